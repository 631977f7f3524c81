// Checking a document as a docs linter does: the alt text problems, and for each image that needs
// alt text whether its file can be described (found, readable, an image the model reads, local).
// Decorative images and images with fine alt text are not looked at.
import { altSummary, findAltTextProblems, type AltTextProblem, type FindOptions } from './diagnose.js';
import { checkImageFile, type ImageFile, type ImageFileAccess, type ImageFileCheck } from './imageFiles.js';
import { isRemote, resolveImagePath } from './references/paths.js';
import type { ImageReference } from './references/types.js';

export interface CheckedProblem extends AltTextProblem {
  /** The image file to describe, when it could be read (the alt text kinds only). */
  file?: ImageFile;
  /** Why this image cannot be described (file kinds, and a computed path). */
  unfixable?: string;
}

export interface DocumentCheck {
  problems: CheckedProblem[];
  /** Set when the document does not parse; problems is then empty. */
  error?: string;
}

export interface CheckOptions extends FindOptions {
  files: ImageFileAccess;
  /** POSIX path of the folder that site-root paths (`/img/x.png`) start from (the workspace or the docs root). */
  rootPath?: string;
  /** Shared by the documents of one run, so an image used on many pages is read and hashed once. */
  fileChecks?: Map<string, Promise<ImageFileCheck>>;
}

export interface CheckedText {
  /** POSIX path of the document (a URI path in the extension): image paths are relative to it. */
  path: string;
  text: string;
  languageId?: string;
  /** Overrides the options' rootPath for this document (its own workspace folder). */
  rootPath?: string;
}

export async function checkDocument(doc: CheckedText, options: CheckOptions): Promise<DocumentCheck> {
  const { problems, error } = findAltTextProblems(doc.text, doc.languageId ?? '', { ...options, path: doc.path });
  const checked: CheckedProblem[] = [];
  const root = { ...options, rootPath: doc.rootPath ?? options.rootPath };
  for (const problem of problems) checked.push(await checkProblemFile(problem, doc.path, root));
  return { problems: checked, error };
}

/** The image file behind one reference (any reference, flagged or not): read and checked, or why not. */
export async function checkReferenceFile(
  image: ImageReference,
  documentPath: string,
  options: CheckOptions,
): Promise<ImageFileCheck | { ok: false; kind: 'remote' | 'computed'; message: string }> {
  const { src } = image;
  if (!src) return { ok: false, kind: 'computed', message: 'the image path is computed by an expression: write this alt text by hand' };
  if (isRemote(src)) return { ok: false, kind: 'remote', message: `remote image: not fetched (${src})` };
  const candidates = resolveImagePath(src, { documentPath, workspaceFolderPath: options.rootPath, urlEncoded: image.syntax !== 'path' });
  const key = `${src}\0${candidates.join('\0')}`;
  let pending = options.fileChecks?.get(key);
  if (!pending) {
    pending = checkImageFile(src, candidates, options.files);
    options.fileChecks?.set(key, pending);
  }
  return pending;
}

async function checkProblemFile(problem: AltTextProblem, documentPath: string, options: CheckOptions): Promise<CheckedProblem> {
  const result = await checkReferenceFile(problem.image, documentPath, options);
  if (result.ok) return { ...problem, file: result.file };
  if (result.kind === 'computed') return { ...problem, unfixable: result.message };
  // On the path where the image names it; a reference-style image's path is in its definition,
  // elsewhere (and shared), so its problem stays on the image.
  const { srcSpan, span: imageSpan } = problem.image;
  const span = srcSpan.end > srcSpan.start && srcSpan.start >= imageSpan.start && srcSpan.end <= imageSpan.end ? srcSpan : problem.span;
  const message = result.kind === 'remote' ? `remote image: not checked (${altSummary(problem)})` : `${result.message} (${altSummary(problem)})`;
  return { ...problem, span, kind: result.kind, message, unfixable: result.message };
}
