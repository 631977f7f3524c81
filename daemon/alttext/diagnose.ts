// Alt text problems in a document: what the diagnostics show and what the batch fix works on.
import { parseImages } from './references/index.js';
import type { ImageReference, Span } from './references/types.js';
import { judgeAlt } from './placeholder.js';

export type AltProblemKind = 'missing' | 'empty' | 'placeholder';

export interface AltTextProblem {
  image: ImageReference;
  kind: AltProblemKind;
  message: string;
  /** Where to show it: the alt text when there is some, else the image syntax. */
  span: Span;
}

export function findAltTextProblems(text: string, languageId: string): { problems: AltTextProblem[]; error?: string } {
  const { references, error } = parseImages(text, languageId);
  const problems: AltTextProblem[] = [];
  for (const image of references) {
    if (!image.alt) continue;
    const { verdict, reason } = judgeAlt(image.alt, image.src);
    const valueSpan = image.alt.valueSpan;
    const span = valueSpan && valueSpan.end > valueSpan.start ? valueSpan : image.span;
    switch (verdict) {
      case 'missing':
        problems.push({ image, kind: 'missing', span, message: 'Image has no alt text.' });
        break;
      case 'empty':
        problems.push({
          image,
          kind: 'empty',
          span,
          message: 'Image has empty alt text: describe it, or mark it as decorative.',
        });
        break;
      case 'placeholder':
        problems.push({ image, kind: 'placeholder', span, message: `Alt text ${reason}: describe the image instead.` });
        break;
    }
  }
  return { problems, error };
}
