// Reading PaliGemma's answers. Detection: per object `<locY0><locX0><locY1><locX1> label`, objects
// separated by ` ; `; a loc value v in 0..1023 is v / 1024 of the image height (y) or width (x).
// Segmentation: the same four locs, then 16 `<segNNN>` codes (0..127), then the label.
// The model can emit anything, so these parsers never throw on the text: they return the
// well-formed groups they find and skip the rest; boxes are always clamped inside the image.
import type { Box } from '../../protocol.js';
import { EngineError } from '../errors.js';

export interface Detection {
  label: string;
  /** in pixels of the original image, x0 <= x1, y0 <= y1, inside [0, width] x [0, height] */
  box: Box;
}

export interface Segment extends Detection {
  /** the four loc values [y0, x0, y1, x1] as generated (0..1023) */
  loc: number[];
  /** the 16 mask codes (0..127) */
  codes: number[];
}

export const LOC_BINS = 1024;
export const SEG_CODES = 16;
export const SEG_CODEBOOK = 128;

const LOC = String.raw`<loc(\d{4})>`;
const LOC4 = String.raw`${LOC}\s*${LOC}\s*${LOC}\s*${LOC}`;
const SEG16 = String.raw`((?:\s*<seg\d{3}>){${SEG_CODES}})`;
/** Tokens that are never part of a label or an answer. */
const CONTROL = /<(?:loc\d+|seg\d+|eos|bos|pad|unk|image|mask)>/g;

export function parseDetections(raw: string, width: number, height: number): Detection[] {
  checkSize(width, height);
  const out: Detection[] = [];
  const re = new RegExp(LOC4, 'g');
  for (const m of matchAll(raw, re)) {
    const loc = m.slice(1, 5).map(Number);
    out.push({ label: labelAfter(raw, m.index + m[0].length), box: toBox(loc, width, height) });
  }
  return out;
}

export function parseSegments(raw: string, width: number, height: number): Segment[] {
  checkSize(width, height);
  const out: Segment[] = [];
  const re = new RegExp(LOC4 + SEG16, 'g');
  for (const m of matchAll(raw, re)) {
    const loc = m.slice(1, 5).map((v) => Math.min(Number(v), LOC_BINS - 1));
    const codes = [...m[5].matchAll(/<seg(\d{3})>/g)].map((s) => Number(s[1]));
    if (codes.some((c) => c >= SEG_CODEBOOK)) continue; // not a codebook entry: malformed group
    out.push({ label: labelAfter(raw, m.index + m[0].length), box: toBox(loc, width, height), loc, codes });
  }
  return out;
}

/** Caption / OCR / answer text for display: no loc/seg/control tokens, no surrounding blanks. */
export function cleanText(text: string): string {
  return text
    .replace(/[ \t]*<(?:loc\d+|seg\d+|eos|bos|pad|unk|image|mask)>[ \t]*/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
}

function checkSize(width: number, height: number): void {
  if (!(width > 0 && height > 0 && Number.isFinite(width) && Number.isFinite(height))) {
    throw new EngineError('invalid-params', `image size must be positive, got ${width}x${height}`);
  }
}

function* matchAll(text: string, re: RegExp): Generator<RegExpExecArray & { index: number }> {
  if (typeof text !== 'string') return;
  for (let m = re.exec(text); m; m = re.exec(text)) yield m;
}

/** The label: text after the group up to the next ` ; `, loc group or end, without control tokens. */
function labelAfter(raw: string, from: number): string {
  const rest = raw.slice(from);
  const end = rest.search(/;|<loc\d{4}>/);
  return (end < 0 ? rest : rest.slice(0, end)).replace(CONTROL, ' ').replace(/\s+/g, ' ').trim();
}

function toBox(loc: readonly number[], width: number, height: number): Box {
  const y = (v: number) => clamp((v / LOC_BINS) * height, height);
  const x = (v: number) => clamp((v / LOC_BINS) * width, width);
  const [ya, xa, yb, xb] = [y(loc[0]), x(loc[1]), y(loc[2]), x(loc[3])];
  return { x0: Math.min(xa, xb), y0: Math.min(ya, yb), x1: Math.max(xa, xb), y1: Math.max(ya, yb) };
}

function clamp(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}
