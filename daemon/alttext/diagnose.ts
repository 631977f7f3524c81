// Alt text problems in a document: what the diagnostics, `paligemma alt-text check` and the batch
// fix work on. Every message a user sees about an image's alt text is written here.
import { parseImages } from './references/index.js';
import type { ImageReference, Span } from './references/types.js';
import { judgeAlt, type JudgeOptions } from './placeholder.js';

/** What is wrong with the alt text itself. */
export type AltTextKind = 'missing' | 'empty' | 'placeholder';
/** Why an image whose alt text needs writing cannot be described from its file. */
export type ImageFileKind = 'not-found' | 'unreadable' | 'unsupported' | 'remote';
export type AltProblemKind = AltTextKind | ImageFileKind;

export const ALT_TEXT_KINDS: readonly AltTextKind[] = ['missing', 'empty', 'placeholder'];
export const PROBLEM_KINDS: readonly AltProblemKind[] = [...ALT_TEXT_KINDS, 'not-found', 'unreadable', 'unsupported', 'remote'];

export interface AltTextProblem {
  image: ImageReference;
  /** The alt text problem, or (from `checkDocument`) why the image file cannot be described. */
  kind: AltProblemKind;
  /** The alt text problem behind it (equal to `kind` for the alt text kinds). */
  altKind: AltTextKind;
  message: string;
  /** Where to show it: the alt text when there is some, else the image syntax; the path for file kinds. */
  span: Span;
}

export interface FindOptions extends JudgeOptions {
  /** The document's path or URI: picks the parser by extension when the language id does not say (`.mdx` as plain text). */
  path?: string;
}

const ALT_MESSAGES: Record<AltTextKind, string> = {
  missing: 'Image has no alt text.',
  empty: 'Image has empty alt text: describe it, or mark it as decorative.',
  placeholder: 'Alt text is a placeholder: describe the image instead.',
};

/** The alt text problem in a few words, for the end of a file problem's message. */
export function altSummary(problem: Pick<AltTextProblem, 'altKind' | 'image'>): string {
  switch (problem.altKind) {
    case 'missing':
      return 'no alt text';
    case 'empty':
      return 'empty alt text';
    case 'placeholder':
      return `placeholder alt text "${problem.image.alt?.value?.trim() ?? ''}"`;
  }
}

export function findAltTextProblems(text: string, languageId: string, options: FindOptions = {}): { problems: AltTextProblem[]; error?: string } {
  const { references, error } = parseImages(text, languageId, options.path);
  const problems: AltTextProblem[] = [];
  for (const image of references) {
    if (!image.alt) continue;
    const { verdict, reason } = judgeAlt(image.alt, image.src, options);
    if (verdict !== 'missing' && verdict !== 'empty' && verdict !== 'placeholder') continue;
    const valueSpan = image.alt.valueSpan;
    const span = valueSpan && valueSpan.end > valueSpan.start ? valueSpan : image.span;
    const message = verdict === 'placeholder' ? `Alt text ${reason}: describe the image instead.` : ALT_MESSAGES[verdict];
    problems.push({ image, kind: verdict, altKind: verdict, span, message });
  }
  return { problems, error };
}
