// Turning a model caption into alt text: no "image of" preamble (screen readers already say "image"),
// sentence case, one line.
import { normalizeAltText } from './escape.js';

const PREAMBLE = /^(?:(?:this|the) )?(?:(?:an?|the) )?(?:image|picture|photo|photograph) (?:of|showing|shows|that shows|depicting) /i;

export function captionToAltText(caption: string): string {
  let text = normalizeAltText(caption).replace(PREAMBLE, '');
  if (!text) return '';
  text = text[0].toUpperCase() + text.slice(1);
  return text;
}
