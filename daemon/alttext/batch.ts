// Planning a batch alt text fix over many documents: which images need text, one model run per
// distinct image content (the same picture under two names or in two folders is described once),
// every image that cannot be described kept with its reason, and the edits per document once the
// texts are chosen.
import type { OffsetEdit } from './references/types.js';
import type { AltTextKind } from './diagnose.js';
import { checkDocument, type CheckedProblem, type CheckOptions } from './check.js';
import type { ImageFile } from './imageFiles.js';
import { altTextEdits, normalizeEdits } from './edits.js';

export interface BatchDocument {
  uri: string;
  /** POSIX path (a URI path in the extension) that image paths are resolved against. */
  path: string;
  version: number;
  languageId?: string;
  text: string;
}

export interface BatchItem {
  /** Stable within one plan: `${uri}#${offset}`. */
  id: string;
  uri: string;
  version: number;
  problem: CheckedProblem;
  /** The image content's SHA-256, shared by every use of the same picture. */
  imageKey: string;
  file: ImageFile;
}

export interface SkippedItem {
  uri: string;
  /** Absent when the whole document was skipped. */
  problem?: CheckedProblem;
  reason: string;
}

export interface BatchPlan {
  items: BatchItem[];
  /** Distinct images to describe, by content hash, each with the first item that uses it. */
  images: Map<string, BatchItem>;
  /** Documents that did not parse, and images that cannot be described, with the reason. */
  skipped: SkippedItem[];
}

export interface PlanOptions extends CheckOptions {
  /** Which alt text problems to fix (default: all three). */
  kinds?: readonly AltTextKind[];
}

export async function planBatch(docs: readonly BatchDocument[], options: PlanOptions): Promise<BatchPlan> {
  const kinds = new Set(options.kinds ?? ['missing', 'empty', 'placeholder']);
  const plan: BatchPlan = { items: [], images: new Map(), skipped: [] };
  for (const doc of docs) {
    const { problems, error } = await checkDocument(doc, options);
    if (error) plan.skipped.push({ uri: doc.uri, reason: `does not parse: ${error}` });
    for (const problem of problems) {
      if (!kinds.has(problem.altKind)) continue;
      if (!problem.file) {
        plan.skipped.push({ uri: doc.uri, problem, reason: problem.unfixable ?? problem.message });
        continue;
      }
      const item: BatchItem = {
        id: `${doc.uri}#${problem.image.span.start}`,
        uri: doc.uri,
        version: doc.version,
        problem,
        imageKey: problem.file.sha256,
        file: problem.file,
      };
      plan.items.push(item);
      if (!plan.images.has(item.imageKey)) plan.images.set(item.imageKey, item);
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
