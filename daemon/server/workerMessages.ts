// The messages between workerBackend.ts (the daemon's main thread) and engineWorker.ts (the
// worker thread running the engine). Everything here must survive structured cloning.
import { EngineError, type EngineErrorCode } from '../engine/errors.js';
import type { DecodingOptions, ExecutionProviderSetting, ProgressNotification } from '../protocol.js';
import type { Grammar, ModelInfo } from './backend.js';

/** What the worker is started with (engineWorker.ts reads it as workerData). */
export interface WorkerData {
  backendModule?: string;
  imageEntries: number;
}

export interface ImageMessage {
  id: number;
  width: number;
  height: number;
  rgb: Uint8Array;
}

export type WorkerRequest =
  | { op: 'load'; id: number; path: string; executionProvider: ExecutionProviderSetting }
  | { op: 'generate'; id: number; model: number; image: ImageMessage; prompt: string; decoding: DecodingOptions; grammar?: Grammar; stream: boolean }
  | { op: 'generateBatch'; id: number; model: number; items: Array<{ image: ImageMessage; prompt: string; maxNewTokens?: number }>; decoding: DecodingOptions; grammar?: Grammar }
  | { op: 'segment'; id: number; model: number; raw: string; width: number; height: number }
  | { op: 'runStats'; id: number; model: number }
  | { op: 'dispose'; id: number; model: number }
  | { op: 'cancel'; id: number };

export interface LoadReply {
  model: number;
  info: ModelInfo;
  segment: boolean;
  batch: boolean;
}

/** An error as it crosses the thread boundary: EngineErrors keep their code, others their name. */
export interface ErrorMessage {
  name: string;
  message: string;
  code?: EngineErrorCode;
}

export type WorkerReply =
  | { kind: 'progress'; id: number; progress: ProgressNotification }
  | { kind: 'token'; id: number; tokenId: number; text: string }
  | { kind: 'done'; id: number; value: unknown }
  | { kind: 'failed'; id: number; error: ErrorMessage };

export function toErrorMessage(e: unknown): ErrorMessage {
  if (e instanceof EngineError) return { name: e.name, message: e.message, code: e.code };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

export function fromErrorMessage(m: ErrorMessage): Error {
  if (m.code) return new EngineError(m.code, m.message);
  const e = new Error(m.message);
  // 'AbortError' must stay recognisable as a cancellation (errors.ts isCancellation).
  e.name = m.name;
  return e;
}
