// Checking a document as a docs linter does: the alt text problems, and for each image that needs
// alt text whether its file can be described (found, readable, an image the model reads, local).
// Decorative images and images with fine alt text are not looked at.
import { altSummary, findAltTextProblems, type AltTextProblem, type FindOptions } from './diagnose.js';
import { checkImageFile, type ImageFile, type ImageFileAccess } from './imageFiles.js';
import { isRemote, resolveImagePath } from './references/paths.js';

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

async function checkProblemFile(problem: AltTextProblem, documentPath: string, options: CheckOptions): Promise<CheckedProblem> {
  const { src, srcSpan } = problem.image;
  if (!src) return { ...problem, unfixable: 'the image path is computed by an expression: write this alt text by hand' };
  const at = { span: srcSpan.end > srcSpan.start ? srcSpan : problem.span };
  if (isRemote(src)) {
    return { ...problem, ...at, kind: 'remote', message: `remote image: not checked (${altSummary(problem)})`, unfixable: `remote image: not fetched (${src})` };
  }
  const urlEncoded = problem.image.syntax !== 'path';
  const candidates = resolveImagePath(src, { documentPath, workspaceFolderPath: options.rootPath, urlEncoded });
  const result = await checkImageFile(src, candidates, options.files);
  if (result.ok) return { ...problem, file: result.file };
  return { ...problem, ...at, kind: result.kind, message: `${result.message} (${altSummary(problem)})`, unfixable: result.message };
}
