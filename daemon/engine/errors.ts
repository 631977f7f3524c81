// Errors the engine raises for bad input or an unusable model. The server maps `code` to a
// stable JSON-RPC error code; the message names the problem for a person.
export type EngineErrorCode =
  | 'not-found'
  | 'not-a-file'
  | 'empty-file'
  | 'unsupported-image'
  | 'corrupt-image'
  | 'too-many-pixels'
  | 'file-too-large'
  | 'prompt-too-long'
  | 'model-missing'
  | 'model-invalid'
  | 'provider-unavailable'
  | 'invalid-params'
  | 'cancelled'
  | 'convert-failed';

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EngineError';
  }
}

export function isEngineError(e: unknown, code?: EngineErrorCode): e is EngineError {
  return e instanceof EngineError && (code === undefined || e.code === code);
}
