// What the user reads when something fails: the daemon's error codes (protocol.ts) and the
// client's own failures turned into one sentence of what happened, to which file, and what to do,
// plus the buttons that do it. The daemon's own wording (method names, loader output, paths
// repeated in nested messages) goes to the log only. No vscode here: unit-tested as it is.
import { ConnectionError, ResponseError } from 'vscode-jsonrpc';
import { DaemonUnavailableError } from '../daemon/client/daemon.js';
import { ErrorCodes } from '../daemon/protocol.js';

/** What a button on the error message does; ctx/commands bind each to a command. */
export type UserAction = 'download' | 'chooseFolder' | 'convert' | 'useCpu' | 'restart' | 'showLogs';

export const ACTION_LABELS: Record<UserAction, string> = {
  download: 'Download…',
  chooseFolder: 'Choose Folder…',
  convert: 'Convert Checkpoint…',
  useCpu: 'Use CPU',
  restart: 'Restart Daemon',
  showLogs: 'Show Logs',
};

export interface UserError {
  message: string;
  actions: UserAction[];
}

export interface ErrorContext {
  /** The image (or document) the request worked on, as the user knows it (a file name). */
  file?: string;
  /** The configured model folder, when one is. */
  modelPath?: string;
  /** The execution provider asked for ('auto' when none). */
  executionProvider?: string;
}

export const NO_MODEL_MESSAGE = 'No model is loaded. Download one or choose a folder.';
const MODEL_ACTIONS: UserAction[] = ['download', 'chooseFolder', 'convert'];

/** undefined for a cancellation: the user asked for it, nothing to say. */
export function userError(err: unknown, c: ErrorContext = {}): UserError | undefined {
  const file = c.file ?? 'The image';
  if (err instanceof ResponseError) {
    switch (err.code) {
      case ErrorCodes.Cancelled:
        return undefined;
      case ErrorCodes.NotFound:
        return { message: `${file} could not be read: it does not exist or is not readable. Check that the file is there.`, actions: [] };
      case ErrorCodes.NotAFile:
        return { message: `${file} is not a file (a folder?). Choose an image file.`, actions: [] };
      case ErrorCodes.EmptyFile:
        return { message: `${file} is empty. Save the image again and retry.`, actions: [] };
      case ErrorCodes.UnsupportedImage:
        return { message: `${file} is in a format PaliGemma cannot read. Save it as PNG, JPEG, WebP or GIF and retry.`, actions: [] };
      case ErrorCodes.CorruptImage:
        return { message: `${file} could not be decoded: the file looks damaged. Open it in an image editor, save it again and retry.`, actions: [] };
      case ErrorCodes.TooManyPixels:
        return { message: `${file} has too many pixels to read. Scale it down and retry.`, actions: [] };
      case ErrorCodes.FileTooLarge:
        return { message: `${file} is too large a file for PaliGemma. Save a smaller copy and retry.`, actions: [] };
      case ErrorCodes.PromptTooLong:
        return { message: `The question about ${c.file ?? 'the image'} is too long for this model. Ask a shorter one.`, actions: [] };
      case ErrorCodes.ModelMissing:
        return modelMissing(c);
      case ErrorCodes.ModelInvalid:
        return {
          message: `The model folder ${c.modelPath ? `${c.modelPath} ` : ''}could not be loaded: its files are incomplete or from an incompatible converter (details in the log). Convert the checkpoint again or choose another folder.`,
          actions: ['chooseFolder', 'convert', 'showLogs'],
        };
      case ErrorCodes.ProviderUnavailable: {
        const ep = c.executionProvider && c.executionProvider !== 'auto' ? c.executionProvider.toUpperCase().replace('WEBGPU', 'WebGPU') : 'The GPU';
        return { message: `${ep} is not available on this machine (details in the log). Run the model on the CPU instead.`, actions: ['useCpu', 'showLogs'] };
      }
      case ErrorCodes.Busy:
        return { message: 'PaliGemma is busy with many other requests. Try again in a moment.', actions: [] };
      case ErrorCodes.ShuttingDown:
        return { message: 'The PaliGemma daemon is stopping. Try again: the next request starts it again.', actions: [] };
      case ErrorCodes.NotCached:
        return { message: `There is no description of ${c.file ?? 'this image'} yet. Run Describe Image first.`, actions: [] };
      case ErrorCodes.MethodNotFound:
        return { message: 'The PaliGemma daemon that is running is another version than this extension. Restart it.', actions: ['restart', 'showLogs'] };
      default:
        return { message: `PaliGemma failed while working on ${c.file ?? 'the request'} (details in the log).`, actions: ['showLogs', 'restart'] };
    }
  }
  if (err instanceof DaemonUnavailableError) {
    return { message: 'The PaliGemma daemon could not be started (details in the log).', actions: ['showLogs', 'restart'] };
  }
  if (err instanceof ConnectionError) {
    return { message: `The PaliGemma daemon stopped while working on ${c.file ?? 'the request'}. Try again: the next request starts it again.`, actions: ['showLogs'] };
  }
  return { message: `PaliGemma failed while working on ${c.file ?? 'the request'} (details in the log).`, actions: ['showLogs'] };
}

function modelMissing(c: ErrorContext): UserError {
  if (c.modelPath) {
    return {
      message: `The model folder ${c.modelPath} is not a complete model (details in the log). Choose another folder or download the model again.`,
      actions: MODEL_ACTIONS,
    };
  }
  return { message: NO_MODEL_MESSAGE, actions: MODEL_ACTIONS };
}

/** A configured model folder that is not there, reported by name and by where it was set. */
export function missingModelFolder(path: string, where: string): UserError {
  return {
    message: `The model folder ${path} (paligemma.modelPath in ${where}) does not exist. Choose a folder or download a model.`,
    actions: MODEL_ACTIONS,
  };
}
