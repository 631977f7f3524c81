// The host side of one inspector panel: turns webview messages into daemon requests and posts the
// results back. It sees VS Code only through the small interfaces below, so it is unit-tested in Node.
import { CancellationTokenSource, type CancellationToken, type RequestType } from 'vscode-jsonrpc';
import { Answer, Caption, Detect, ErrorCodes, Ocr, Segment, type ImageRef, type ObjectsResult, type TextResult, type TokenNotification } from '../../daemon/protocol.js';
import { errorMessage, formatBytes, MAX_PASTED_IMAGE_BYTES } from '../../daemon/client/shared.js';
import type { HostMessage, ImageSource, InspectorImage, InspectorTask, TaskResult, WebviewMessage } from '../../webview/messages.js';
import { TASK_LABELS } from '../../webview/tasks.js';

/** What the inspector needs from the daemon client (the extension's client passes itself). */
export interface DaemonRequester {
  sendRequest<P, R>(type: RequestType<P, R, void>, params: P, token?: CancellationToken): Promise<R>;
  /** When given, answers stream into the webview token by token. */
  onTokens?(listener: (n: TokenNotification) => void): { dispose(): void };
}

/** The VS Code side of a panel, injected so the controller needs no `vscode` import. */
export interface InspectorHost {
  postMessage(message: HostMessage): Thenable<boolean> | Promise<boolean> | boolean | void;
  /** How the daemon reads the image: a path for local files, bytes otherwise. */
  imageRef(source: ImageSource): Promise<ImageRef>;
  /** The webview-side view of the image (a webview URI for files; may widen localResourceRoots). */
  showable(source: ImageSource): Promise<InspectorImage>;
  /** Resolves a URI dropped into the webview; throws a user-facing Error when it is not an image. */
  sourceFromUri(uri: string): Promise<ImageSource>;
  pickImage(): Promise<ImageSource | undefined>;
  writeClipboard(text: string): Promise<void>;
  /** Called whenever the inspected image changes (the panel updates its title). */
  onImageChanged?(source: ImageSource): void;
  /** The user's settings for every request (paligemma.maxNewTokens, paligemma.captionLanguage). */
  taskDefaults?(): TaskDefaults;
}

export interface TaskDefaults {
  maxNewTokens?: number;
  language?: string;
}

interface Request {
  type: RequestType<unknown, TextResult | ObjectsResult, void>;
  params: Record<string, unknown>;
}

/** The protocol request for a task. */
export function requestFor(task: InspectorTask, image: ImageRef, defaults: TaskDefaults = {}): Request {
  const decoding = defaults.maxNewTokens !== undefined ? { decoding: { maxNewTokens: defaults.maxNewTokens } } : {};
  const language = defaults.language ? { language: defaults.language } : {};
  switch (task.kind) {
    case 'caption':
      return { type: Caption.type, params: { image, ...language, ...(task.detail ? { detail: task.detail } : {}), ...decoding } };
    case 'ocr':
      return { type: Ocr.type, params: { image, ...decoding } };
    case 'answer':
      return { type: Answer.type, params: { image, question: task.question, ...language, ...decoding } };
    case 'detect':
      return { type: Detect.type, params: { image, objects: task.objects, ...decoding } };
    case 'segment':
      return { type: Segment.type, params: { image, object: task.object, ...decoding } };
  }
}

/** Checks a task coming from the webview: it is untrusted input like any other message. */
export function validateTask(task: unknown): InspectorTask {
  const t = task as InspectorTask | undefined;
  const nonEmpty = (s: unknown): s is string => typeof s === 'string' && s.trim().length > 0;
  switch (t?.kind) {
    case 'caption':
      return { kind: 'caption', ...(t.detail === 'long' || t.detail === 'short' ? { detail: t.detail } : {}) };
    case 'ocr':
      return { kind: 'ocr' };
    case 'answer':
      if (!nonEmpty(t.question)) throw new Error('The question is empty.');
      return { kind: 'answer', question: t.question.trim() };
    case 'detect':
      if (!Array.isArray(t.objects) || !t.objects.every(nonEmpty) || t.objects.length === 0) {
        throw new Error('Say what to detect, e.g. "cat; dog".');
      }
      return { kind: 'detect', objects: t.objects.map((o) => o.trim()) };
    case 'segment':
      if (!nonEmpty(t.object)) throw new Error('Say what to segment, e.g. "cat".');
      return { kind: 'segment', object: t.object.trim() };
    default:
      throw new Error(`Unknown inspector task ${JSON.stringify((t as { kind?: unknown } | undefined)?.kind)}.`);
  }
}

function toResult(task: InspectorTask, response: TextResult | ObjectsResult): TaskResult {
  const meta = { model: response.model, ms: response.ms, cached: response.cached };
  switch (task.kind) {
    case 'caption':
    case 'ocr':
      return { kind: task.kind, text: (response as TextResult).text, meta };
    case 'answer':
      return { kind: 'answer', question: task.question, text: (response as TextResult).text, meta };
    case 'detect':
      return { kind: 'detect', query: task.objects, objects: (response as ObjectsResult).objects, meta };
    case 'segment':
      return { kind: 'segment', query: [task.object], objects: (response as ObjectsResult).objects, meta };
  }
}

/** What a failed task says in the inspector: which task, and why (or that it was cancelled). */
export function taskErrorMessage(task: InspectorTask, err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if (code === ErrorCodes.Cancelled) return `${TASK_LABELS[task.kind].title}: cancelled.`;
  return `${TASK_LABELS[task.kind].title} failed: ${errorMessage(err)}`;
}

let streamCounter = 0;

export class InspectorController {
  private source: ImageSource | undefined;
  private readonly inFlight = new Map<string, { cts: CancellationTokenSource; streamId?: string }>();
  private readonly streams = new Map<string, string>(); // streamId -> requestId
  private readonly tokenSubscription: { dispose(): void } | undefined;
  private disposed = false;
  /** Tasks asked for before the webview's script ran: it could not have acted on them yet. */
  private pendingTasks: InspectorTask[] = [];
  private webviewReady = false;

  constructor(
    private readonly host: InspectorHost,
    private readonly daemon: DaemonRequester,
    source?: ImageSource,
  ) {
    this.source = source;
    this.tokenSubscription = daemon.onTokens?.((n) => {
      const requestId = this.streams.get(n.streamId);
      if (requestId !== undefined) this.post({ type: 'partial', requestId, text: n.text });
    });
  }

  get image(): ImageSource | undefined {
    return this.source;
  }

  /** Shows a new image (from a command, a drop or a paste); results of the old one are dropped by the webview. */
  async setImage(source: ImageSource): Promise<void> {
    this.source = source;
    this.host.onImageChanged?.(source);
    this.post({ type: 'image', image: await this.host.showable(source) });
  }

  /** Runs a task as if the user pressed its button (the webview sends the request back with its id). */
  runTask(task: InspectorTask): void {
    if (this.webviewReady) this.post({ type: 'runTask', task });
    else this.pendingTasks.push(task);
  }

  async handle(message: WebviewMessage): Promise<void> {
    try {
      switch (message.type) {
        case 'ready': {
          this.webviewReady = true;
          if (this.source) this.post({ type: 'image', image: await this.host.showable(this.source) });
          const tasks = this.pendingTasks.splice(0);
          for (const task of tasks) this.post({ type: 'runTask', task });
          return;
        }
        case 'run':
          return await this.run(message.requestId, message.task);
        case 'cancel':
          this.inFlight.get(message.requestId)?.cts.cancel();
          return;
        case 'openData':
          return await this.setImage(validateData(message));
        case 'openUri':
          return await this.setImage(await this.host.sourceFromUri(message.uri));
        case 'pickImage': {
          const picked = await this.host.pickImage();
          if (picked) await this.setImage(picked);
          return;
        }
        case 'copy':
          if (typeof message.text === 'string') await this.host.writeClipboard(message.text);
          return;
        default:
          throw new Error(`unknown message ${JSON.stringify((message as { type?: unknown }).type)}`);
      }
    } catch (err) {
      this.post({ type: 'error', message: errorMessage(err) });
    }
  }

  private async run(requestId: string, rawTask: unknown): Promise<void> {
    let task: InspectorTask;
    try {
      task = validateTask(rawTask);
    } catch (err) {
      this.post({ type: 'error', requestId, message: errorMessage(err) });
      return;
    }
    if (!this.source) {
      this.post({ type: 'error', requestId, message: 'Open, paste or drop an image first.' });
      return;
    }
    const cts = new CancellationTokenSource();
    const entry: { cts: CancellationTokenSource; streamId?: string } = { cts };
    this.inFlight.set(requestId, entry);
    try {
      const image = await this.host.imageRef(this.source);
      const req = requestFor(task, image, this.host.taskDefaults?.());
      if (this.daemon.onTokens && task.kind !== 'detect' && task.kind !== 'segment') {
        entry.streamId = `inspector-${process.pid}-${++streamCounter}`;
        this.streams.set(entry.streamId, requestId);
        req.params.streamId = entry.streamId;
      }
      const response = await this.daemon.sendRequest(req.type, req.params, cts.token);
      if (cts.token.isCancellationRequested) {
        this.post({ type: 'error', requestId, message: taskErrorMessage(task, { code: ErrorCodes.Cancelled }) });
        return;
      }
      this.post({ type: 'result', requestId, result: toResult(task, response) });
    } catch (err) {
      this.post({ type: 'error', requestId, message: taskErrorMessage(task, err) });
    } finally {
      this.inFlight.delete(requestId);
      if (entry.streamId) this.streams.delete(entry.streamId);
      cts.dispose();
    }
  }

  private post(message: HostMessage): void {
    if (this.disposed) return;
    void Promise.resolve(this.host.postMessage(message)).catch(() => undefined);
  }

  dispose(): void {
    this.disposed = true;
    for (const { cts } of this.inFlight.values()) cts.cancel();
    this.inFlight.clear();
    this.tokenSubscription?.dispose();
  }
}

/** Checks a pasted/dropped image before it is shown or sent to the daemon. */
export function validateData(message: { data: unknown; mimeType: unknown; name: unknown }): ImageSource {
  if (typeof message.mimeType !== 'string' || !message.mimeType.startsWith('image/')) {
    throw new Error(`Only images can be inspected (got ${String(message.mimeType) || 'an unknown type'}).`);
  }
  if (typeof message.data !== 'string' || message.data.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(message.data)) {
    throw new Error('The pasted image could not be read (no base64 data).');
  }
  const bytes = Math.floor((message.data.length * 3) / 4);
  if (bytes > MAX_PASTED_IMAGE_BYTES) {
    throw new Error(`The pasted image is ${formatBytes(bytes)}; the limit is ${formatBytes(MAX_PASTED_IMAGE_BYTES)}.`);
  }
  const name = typeof message.name === 'string' && message.name.trim() ? message.name.trim() : 'pasted image';
  return { kind: 'data', data: message.data, mimeType: message.mimeType, name };
}
