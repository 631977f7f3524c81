export { loadImage, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS } from './load.js';
export type { RgbImage, LoadImageOptions } from './load.js';
export { preprocess } from './preprocess.js';
export type { PreprocessOptions } from './preprocess.js';
export { resizeBicubicAntialias } from './resize.js';
