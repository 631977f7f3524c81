// Planning "Fill Missing Alt Text" over many documents: which images need text, one model run per
// distinct image file, and the edits per document once the user has picked which proposals to keep.
import type { OffsetEdit } from './references/types.js';
import { findAltTextProblems, type AltProblemKind, type AltTextProblem } from './diagnose.js';
import { altTextEdits, normalizeEdits } from './edits.js';

export interface BatchDocument {
  uri: string;
  version: number;
  languageId: string;
  text: string;
}

export interface BatchItem {
  /** Stable within one plan: `${uri}#${offset}`. */
  id: string;
  uri: string;
  version: number;
  problem: AltTextProblem;
  /** Identity of the image file (e.g. its resolved URI), shared by every use of the same file. */
  imageKey: string;
}

export interface BatchPlan {
  items: BatchItem[];
  /** Distinct images to describe, each with the first item that uses it (to resolve and read it). */
  images: Map<string, BatchItem>;
  /** Documents that did not parse, and images whose file could not be named. */
  skipped: { uri: string; reason: string }[];
}

export interface PlanOptions {
  kinds?: AltProblemKind[];
  /** The image's identity, or undefined when it cannot be read (remote, computed, not found). */
  imageKey(doc: BatchDocument, src: string): string | undefined;
}

export function planBatch(docs: BatchDocument[], options: PlanOptions): BatchPlan {
  const kinds = new Set(options.kinds ?? ['missing', 'empty', 'placeholder']);
  const plan: BatchPlan = { items: [], images: new Map(), skipped: [] };
  for (const doc of docs) {
    const { problems, error } = findAltTextProblems(doc.text, doc.languageId);
    if (error) plan.skipped.push({ uri: doc.uri, reason: `does not parse: ${error}` });
    for (const problem of problems) {
      if (!kinds.has(problem.kind)) continue;
      const src = problem.image.src;
      const key = src ? options.imageKey(doc, src) : undefined;
      if (!key) {
        plan.skipped.push({ uri: doc.uri, reason: src ? `${src}: image not found or not local` : 'image path is computed' });
        continue;
      }
      const item: BatchItem = { id: `${doc.uri}#${problem.image.span.start}`, uri: doc.uri, version: doc.version, problem, imageKey: key };
      plan.items.push(item);
      if (!plan.images.has(key)) plan.images.set(key, item);
    }
  }
  return plan;
}

export interface AcceptedAltText {
  item: BatchItem;
  altText: string;
}

/** The edits for each document, from the accepted proposals; documents without any are left out. */
export function batchEdits(accepted: AcceptedAltText[]): Map<string, OffsetEdit[]> {
  const byUri = new Map<string, OffsetEdit[]>();
  for (const { item, altText } of accepted) {
    if (!altText.trim()) continue;
    const edits = byUri.get(item.uri) ?? [];
    edits.push(...altTextEdits(item.problem.image, altText));
    byUri.set(item.uri, edits);
  }
  for (const [uri, edits] of byUri) byUri.set(uri, normalizeEdits(edits));
  return byUri;
}
