// Judging an alt text: missing, empty, a placeholder (what tools and cameras leave behind, or a
// word that says nothing about the picture), decorative, or fine.
import { posix } from 'node:path';
import { IMAGE_EXTENSIONS } from '../common/images.js';
import { stripQueryAndHash } from './references/paths.js';
import type { AltSite } from './references/types.js';

export type AltVerdict = 'fine' | 'missing' | 'empty' | 'placeholder' | 'decorative' | 'dynamic';

export interface JudgeOptions {
  /** More texts that count as placeholders (compared like the built-in ones: case, punctuation and a leading article do not matter). */
  placeholders?: readonly string[];
}

// Words that name the kind of picture, not what it shows: alone or two of them ("demo video",
// "sample screenshot") they are a placeholder. Compared after lower-casing, trimming punctuation and
// dropping a leading article; "screen shot" is read as "screenshot".
const GENERIC_WORDS = new Set([
  'demo',
  'sample',
  'example',
  'preview',
  'screenshot',
  'screencap',
  'screencast',
  'image',
  'img',
  'images',
  'picture',
  'pic',
  'photo',
  'photograph',
  'gif',
  'video',
  'figure',
  'fig',
  'diagram',
  'chart',
  'graph',
  'logo',
  'icon',
  'untitled',
  'graphic',
  'thumbnail',
  'snapshot',
  'capture',
  'banner',
  'illustration',
  'animation',
  'placeholder',
  'alt',
  'text',
  'description',
]);
// Whole texts that tools and templates leave behind.
const PLACEHOLDER_TEXTS = new Set([
  'screen capture',
  'alt text',
  'alttext',
  'alt-text',
  'alt tag',
  'todo',
  'tbd',
  'fixme',
  'image description',
  'enter image description here',
  'insert image description here',
  'insert alt text here',
  'add alt text',
  'image alt text',
  'image here',
  'image of',
  'photo of',
  'picture of',
  'null',
  'undefined',
  'none',
  'blank',
  'empty',
  'alt="',
]);
// Names cameras, phones and screenshot tools give files, and numbered stand-ins like "image 1".
const GENERATED_NAME = /^(screen ?shot|screen recording|cleanshot|capture|snip|img|image|dsc|dscn|dcim|pxl|photo|pic|picture|figure|fig|mvimg|wp)[\s_.-]*\d/i;
const FILE_NAME = new RegExp(String.raw`\.(${IMAGE_EXTENSIONS.join('|')})$`, 'i');
const URL_TEXT = /^(?:[a-z][a-z0-9+.-]*:\/\/|www\.)\S+$/i;
// A path: no spaces, slashes between name characters, and a leading `./` `../` `/` or a file
// extension at the end (`img/cat.png`, `./assets/hero`), so that "TCP/IP" stays a description.
const PATH_TEXT = /^(?:(?:\.{0,2}\/)[\w@~%+.,-]+(?:\/[\w@~%+.,-]+)*|[\w@~%+.,-]+(?:\/[\w@~%+,-]+)*\/[\w@~%+,-]+\.[a-z0-9]{2,5})\/?$/i;

function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/^[\s\p{P}]+|[\s\p{P}]+$/gu, '')
    .replace(/^(an?|the) /, '');
}

/** Why `alt` is a placeholder for the image at `src`, or undefined when it reads as a real description. */
export function placeholderReason(alt: string, src: string, options: JudgeOptions = {}): string | undefined {
  const text = alt.trim();
  const norm = normalize(text);
  if (PLACEHOLDER_TEXTS.has(norm) || options.placeholders?.some((p) => normalize(p) === norm)) return `"${text}" is a placeholder`;
  const words = norm
    .replace(/\bscreen shot\b/g, 'screenshot')
    .split(/[\s_-]+/)
    .filter(Boolean);
  if (words.length > 0 && words.length <= 2 && words.every((w) => GENERIC_WORDS.has(w))) return `"${text}" is a placeholder`;
  if (/^\d+$/.test(norm)) return `"${text}" is only a number`;
  if (URL_TEXT.test(text)) return `"${text}" is a URL`;
  if (GENERATED_NAME.test(text)) return `"${text}" is a generated file name`;
  if (FILE_NAME.test(text)) return `"${text}" is a file name`;
  if (PATH_TEXT.test(text)) return `"${text}" is a path`;
  const base = posix.basename(stripQueryAndHash(src).replace(/\\/g, '/'));
  const stem = base.replace(/\.[^.]*$/, '');
  if (base && text.toLowerCase() === base.toLowerCase()) return `"${text}" is the file name`;
  // A bare word equal to the file name ("cat" for cat.png) may be a deliberate short description;
  // a stem with separators or digits ("hero-banner_2") is the file name pasted in.
  if (stem && text.toLowerCase() === stem.toLowerCase() && /[-_.\d]/.test(stem)) return `"${text}" is the file name`;
  return undefined;
}

/**
 * The verdict on one image's alt text. In HTML and JSX an explicit `alt=""` is the author saying
 * "decorative" (WCAG H67), as are role="presentation"/"none" and aria-hidden="true"; a valueless
 * `alt` is empty (as markdownlint's MD045 reads it). Markdown has no way to write an empty alt on
 * purpose, so `![](x)` is missing, unless the decorative marker comment follows it.
 */
export function judgeAlt(site: AltSite, src: string, options: JudgeOptions = {}): { verdict: AltVerdict; reason?: string } {
  if (site.dynamic) return { verdict: 'dynamic' };
  if (site.decorative) return { verdict: 'decorative' };
  const markdown = site.dialect === 'markdown' || site.dialect === 'mdx';
  if (site.value === undefined) return { verdict: 'missing' };
  if (site.valueless) return { verdict: 'empty' };
  if (site.value === '' && !markdown) return { verdict: 'decorative' };
  if (site.value.trim() === '') return { verdict: markdown ? 'missing' : 'empty' };
  const reason = placeholderReason(site.value, src, options);
  return reason ? { verdict: 'placeholder', reason } : { verdict: 'fine' };
}
