// Every failure leaves the daemon as a JSON-RPC error with a stable code from protocol.ts and a
// message naming the problem; `data.reason` carries the engine's string code for scripts.
import { ResponseError } from 'vscode-jsonrpc';
import { EngineError, type EngineErrorCode } from '../engine/errors.js';
import { ErrorCodes, type ErrorCode } from '../protocol.js';

const engineToRpc: Record<EngineErrorCode, ErrorCode> = {
  'not-found': ErrorCodes.NotFound,
  'not-a-file': ErrorCodes.NotAFile,
  'empty-file': ErrorCodes.EmptyFile,
  'unsupported-image': ErrorCodes.UnsupportedImage,
  'corrupt-image': ErrorCodes.CorruptImage,
  'too-many-pixels': ErrorCodes.TooManyPixels,
  'file-too-large': ErrorCodes.FileTooLarge,
  'prompt-too-long': ErrorCodes.PromptTooLong,
  'model-missing': ErrorCodes.ModelMissing,
  'model-invalid': ErrorCodes.ModelInvalid,
  'provider-unavailable': ErrorCodes.ProviderUnavailable,
  'invalid-params': ErrorCodes.InvalidParams,
  cancelled: ErrorCodes.Cancelled,
  'convert-failed': ErrorCodes.ModelInvalid,
};

export interface ErrorData {
  reason: string;
}

/** A server-side failure with a protocol code; thrown by the server's own checks. */
export class RpcFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'RpcFailure';
  }
}

export const invalidParams = (message: string) => new RpcFailure(ErrorCodes.InvalidParams, message, 'invalid-params');
export const cancelled = (message = 'request cancelled') => new RpcFailure(ErrorCodes.Cancelled, message, 'cancelled');
export const shuttingDown = () => new RpcFailure(ErrorCodes.ShuttingDown, 'the daemon is shutting down', 'shutting-down');
export const busy = (message: string) => new RpcFailure(ErrorCodes.Busy, message, 'busy');

export function isCancellation(e: unknown): boolean {
  if (e instanceof RpcFailure) return e.code === ErrorCodes.Cancelled;
  if (e instanceof EngineError) return e.code === 'cancelled';
  return e instanceof Error && e.name === 'AbortError';
}

export function toResponseError(e: unknown): ResponseError<ErrorData> {
  if (e instanceof ResponseError) return e;
  if (e instanceof RpcFailure) return new ResponseError(e.code, e.message, { reason: e.reason });
  if (e instanceof EngineError) return new ResponseError(engineToRpc[e.code] ?? ErrorCodes.InternalError, e.message, { reason: e.code });
  if (isCancellation(e)) return new ResponseError(ErrorCodes.Cancelled, 'request cancelled', { reason: 'cancelled' });
  const message = e instanceof Error ? e.message : String(e);
  return new ResponseError(ErrorCodes.InternalError, `internal error: ${message}`, { reason: 'internal' });
}
