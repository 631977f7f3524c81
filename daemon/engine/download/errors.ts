// Download failures, each with a reason the CLI, daemon and extension can act on (ask for a
// token, offer a retry, free disk space) and a message that says what to do.
import { EngineError, type EngineErrorCode } from '../errors.js';

export type DownloadFailure =
  | 'bad-repo' // not an owner/name id, or a token that is not an HF token
  | 'unauthorized' // 401: no or invalid token (gated or private repo)
  | 'gated' // 403: token fine, but the license was not accepted
  | 'not-found' // 404: repo, revision or file
  | 'layout' // nothing in the repo we can run
  | 'no-variant' // variant missing or ambiguous
  | 'network' // connection lost, stalled, HTTP 5xx: the .part files stay for a retry
  | 'integrity' // size or hash mismatch: the corrupt .part is deleted
  | 'disk-space'
  | 'exists' // the install folder is taken by something else
  | 'busy' // another download of the same repo is running
  | 'cancelled'
  | 'convert'; // the checkpoint downloaded but conversion failed

const CODES: Partial<Record<DownloadFailure, EngineErrorCode>> = {
  'bad-repo': 'invalid-params',
  'no-variant': 'invalid-params',
  'not-found': 'not-found',
  cancelled: 'cancelled',
  convert: 'convert-failed',
};

export class DownloadError extends EngineError {
  constructor(
    readonly reason: DownloadFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    // The other failures mean "the model could not be obtained": the daemon reports them as a
    // missing model, with `reason` for callers that offer a specific fix.
    super(CODES[reason] ?? 'model-missing', message, options);
    this.name = 'DownloadError';
  }
}
