export { TextTokenizer, loadTokenizer, tokenizerFromJson } from './tokenizer.js';
export { TextStream } from './stream.js';
export { buildPrompt, encodePrompt, oneLine } from './prompt.js';
export type { PromptTask, PromptTokenIds } from './prompt.js';
