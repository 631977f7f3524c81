// What the server needs from the engine, as a small interface: the real implementation is
// engineBackend.ts (engine in this thread), which the daemon runs in a worker thread through
// workerBackend.ts; tests that must control timing wrap it (see test/server/).
import type { DecodingOptions, DetectedObject, ExecutionProviderSetting, ProgressNotification } from '../protocol.js';

/** A decoded, preprocessed image; opaque to the server except for its size. */
export interface DecodedImage {
  width: number;
  height: number;
}

export interface ImageLimits {
  maxPixels: number;
  maxBytes: number;
}

/** An output grammar the decoding is held to: 'segment' = 4 loc tokens, 16 seg tokens, then free. */
export type Grammar = 'segment';

export interface GenerateRequest {
  image: DecodedImage;
  /** The raw prefix, e.g. "caption en". */
  prompt: string;
  decoding: DecodingOptions;
  grammar?: Grammar;
  onToken?: (tokenId: number, textSoFar: string) => void;
  signal?: AbortSignal;
}

export interface GenerateOutput {
  text: string;
  raw: string;
  inputIds: number[];
  generatedIds: number[];
}

export interface ModelInfo {
  name: string;
  architecture: string;
  imageSize: number;
  dtype: string;
  executionProvider: string;
  providerNotes?: string[];
  decodeLoop?: 'host' | 'graph' | 'search';
  warnings: string[];
}

/** One row of a batched generation. */
export interface BatchRow {
  image: DecodedImage;
  prompt: string;
  maxNewTokens?: number;
}

export interface LoadedModel {
  readonly info: ModelInfo;
  generate(req: GenerateRequest): Promise<GenerateOutput>;
  /**
   * Several images/prompts in one pass with shared decoding options; an item's own maxNewTokens
   * takes the place of `decoding.maxNewTokens` for its row. Absent when the engine cannot.
   */
  generateBatch?(items: BatchRow[], decoding: DecodingOptions, signal?: AbortSignal, grammar?: Grammar): Promise<GenerateOutput[]>;
  /** Segment objects with masks, when the model folder has a mask decoder (vae.onnx); else absent. */
  segment?(raw: string, width: number, height: number): Promise<DetectedObject[]>;
  /** onnxruntime runs (vision and decoder) and their milliseconds since load (tests, benchmarks). */
  runStats?(): Promise<RunStats>;
  /** True once the model can no longer run (its engine worker stopped): the manager loads it again. */
  readonly lost?: boolean;
  dispose(): Promise<void>;
}

export interface RunStats {
  runs: number;
  ms: number;
}

export type Task = 'caption' | 'ocr' | 'detect' | 'answer' | 'segment';

export interface TaskPromptParams {
  language?: string;
  detail?: 'short' | 'long';
  objects?: string[];
  question?: string;
  object?: string;
}

export interface Backend {
  /** A cheap identity for a model folder (no sessions created): name and a content id. */
  identify(path: string): Promise<{ id: string; name: string }>;
  load(path: string, options: { executionProvider: ExecutionProviderSetting; onProgress?: (p: ProgressNotification) => void }): Promise<LoadedModel>;
  decodeImage(bytes: Buffer, limits: ImageLimits): Promise<DecodedImage>;
  /** The pixel size in an image's header, without decoding it (memory admission); undefined when unreadable. */
  measureImage?(bytes: Buffer): Promise<{ width: number; height: number } | undefined>;
  prompt(task: Task, params: TaskPromptParams): string;
  parseObjects(task: 'detect' | 'segment', raw: string, width: number, height: number): DetectedObject[];
  /** Caption / OCR / answer text for people: without the location and segment tokens. */
  displayText(text: string): string;
}
