// Judging an alt text: missing, empty, a placeholder (what tools and cameras leave behind), or fine.
import { posix } from 'node:path';
import { IMAGE_EXTENSIONS } from '../common/images.js';
import { stripQueryAndHash } from './references/paths.js';
import type { AltSite } from './references/types.js';

export type AltVerdict = 'ok' | 'missing' | 'empty' | 'placeholder' | 'decorative' | 'dynamic';

// Compared after lower-casing, trimming punctuation and dropping a leading article.
const PLACEHOLDER_WORDS = new Set([
  'image', 'img', 'images', 'picture', 'pic', 'photo', 'photograph', 'screenshot', 'screen shot', 'screencap',
  'screen capture', 'capture', 'snapshot', 'alt', 'alt text', 'alttext', 'alt-text', 'alt tag', 'text', 'graphic',
  'figure', 'icon', 'thumbnail', 'untitled', 'placeholder', 'todo', 'tbd', 'fixme', 'description',
  'image description', 'enter image description here', 'insert image description here', 'insert alt text here',
  'add alt text', 'image alt', 'image alt text', 'img alt', 'image here', 'image of', 'photo of', 'picture of',
  'null', 'undefined', 'none', 'blank', 'empty', 'alt="', 'diagram', 'chart', 'logo',
]);
// Names cameras, phones and screenshot tools give files, and numbered stand-ins like "image 1".
const GENERATED_NAME = /^(screen ?shot|screen recording|cleanshot|capture|snip|img|image|dsc|dscn|dcim|pxl|photo|pic|picture|figure|fig|mvimg|wp)[\s_.-]*\d/i;
const FILE_NAME = new RegExp(String.raw`\.(${IMAGE_EXTENSIONS.join('|')})$`, 'i');

function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/^[\s\p{P}]+|[\s\p{P}]+$/gu, '')
    .replace(/^(an?|the) /, '');
}

/** Why `alt` is a placeholder for the image at `src`, or undefined when it reads as a real description. */
export function placeholderReason(alt: string, src: string): string | undefined {
  const text = alt.trim();
  const norm = normalize(text);
  if (PLACEHOLDER_WORDS.has(norm)) return `"${text}" is a placeholder`;
  if (/^\d+$/.test(norm)) return `"${text}" is only a number`;
  if (GENERATED_NAME.test(text)) return `"${text}" is a generated file name`;
  if (FILE_NAME.test(text)) return `"${text}" is a file name`;
  const base = posix.basename(stripQueryAndHash(src).replace(/\\/g, '/'));
  const stem = base.replace(/\.[^.]*$/, '');
  if (base && text.toLowerCase() === base.toLowerCase()) return `"${text}" is the file name`;
  // A bare word equal to the file name ("cat" for cat.png) may be a deliberate short description;
  // a stem with separators or digits ("hero-banner_2") is the file name pasted in.
  if (stem && text.toLowerCase() === stem.toLowerCase() && /[-_.\d]/.test(stem)) return `"${text}" is the file name`;
  return undefined;
}

export function judgeAlt(site: AltSite, src: string): { verdict: AltVerdict; reason?: string } {
  if (site.dynamic) return { verdict: 'dynamic' };
  if (site.value === undefined) return site.decorative ? { verdict: 'decorative' } : { verdict: 'missing' };
  if (site.value.trim() === '') return { verdict: site.decorative ? 'decorative' : 'empty' };
  const reason = placeholderReason(site.value, src);
  return reason ? { verdict: 'placeholder', reason } : { verdict: 'ok' };
}
