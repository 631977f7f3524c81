export { TextTokenizer, loadTokenizer, tokenizerFromJson } from './tokenizer.js';
export { TextStream } from './stream.js';
export { buildPrompt, encodePrompt, oneLine } from './prompt.js';
export type { PromptTask, PromptTokenIds } from './prompt.js';
export { parseDetections, parseSegments, cleanText, LOC_BINS, SEG_CODES, SEG_CODEBOOK } from './parse.js';
export type { Detection, Segment } from './parse.js';
