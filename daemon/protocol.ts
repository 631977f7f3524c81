// The daemon's JSON-RPC protocol, imported by the daemon, the CLI and the extension.
// Types and message descriptors only: nothing here runs model code or touches a transport.
import { NotificationType, NotificationType0, RequestType, RequestType0 } from 'vscode-jsonrpc';

/** An image is named by path (read by the daemon) or sent inline (remote workspaces, pasted images). */
export type ImageRef = { path: string } | { data: string; mimeType?: string };

/** The daemon's default limit on one JSON-RPC message (inline images travel as base64 inside one). */
export const MAX_MESSAGE_BYTES = 96 * 1024 * 1024;

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A segmentation mask covering exactly `box` (rounded to whole pixels), row-major, run-length encoded. */
export interface Mask {
  width: number;
  height: number;
  /** Alternating run lengths, starting with a run of 0s (which may be empty). */
  rle: number[];
}

export interface DetectedObject {
  label: string;
  box: Box;
  mask?: Mask;
}

export interface DecodingOptions {
  maxNewTokens?: number;
  minNewTokens?: number;
  /** 'greedy' (default), 'beam' or 'sample'. */
  strategy?: 'greedy' | 'beam' | 'sample';
  numBeams?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** Every result says which model answered and how long it took. */
export interface ResultMeta {
  model: string;
  ms: number;
  cached: boolean;
}

export interface TextResult extends ResultMeta {
  text: string;
}

export interface ObjectsResult extends ResultMeta {
  objects: DetectedObject[];
}

/** Attached to requests that may stream tokens back to the client. */
export interface StreamParams {
  /** When set, the daemon sends `paligemma/token` notifications carrying this id. */
  streamId?: string;
}

/** Hovers show what is already known without running the model. */
export interface CacheOnlyParams {
  /** Answer from the result cache only; fails with NotCached instead of running the model. */
  cacheOnly?: boolean;
}

export interface CaptionParams extends StreamParams, CacheOnlyParams {
  image: ImageRef;
  language?: string;
  detail?: 'short' | 'long';
  decoding?: DecodingOptions;
}
export interface OcrParams extends StreamParams, CacheOnlyParams {
  image: ImageRef;
  decoding?: DecodingOptions;
}
export interface DetectParams extends StreamParams, CacheOnlyParams {
  image: ImageRef;
  objects: string[];
  decoding?: DecodingOptions;
}
export interface AnswerParams extends StreamParams, CacheOnlyParams {
  image: ImageRef;
  question: string;
  language?: string;
  decoding?: DecodingOptions;
}
export interface SegmentParams extends StreamParams, CacheOnlyParams {
  image: ImageRef;
  object: string;
  decoding?: DecodingOptions;
  /**
   * Decode within PaliGemma's segmentation grammar (4 location tokens, 16 segmentation tokens,
   * then the label), so the answer always holds at least one object; default true. False lets
   * the model decode freely: it may then answer with no object. Part of the result cache key.
   */
  constrained?: boolean;
}
export interface GenerateParams extends StreamParams {
  image: ImageRef;
  /** The raw prefix, e.g. "caption en"; the daemon adds the image tokens, <bos> and "\n". */
  prompt: string;
  decoding?: DecodingOptions;
}
export interface GenerateResult extends ResultMeta {
  text: string;
  /** The model's text before special tokens were removed (keeps <locNNNN>/<segNNN>). */
  raw: string;
  inputIds: number[];
  generatedIds: number[];
}

export interface LoadModelParams {
  /** A converted model folder (manifest.json), or a folder in the onnx-community layout. */
  path: string;
  executionProvider?: ExecutionProviderSetting;
}
export type ExecutionProviderSetting = 'auto' | 'cuda' | 'webgpu' | 'cpu';

export type ModelState = 'none' | 'loading' | 'ready' | 'error';

export interface ModelStatus {
  state: ModelState;
  path?: string;
  /** Identity used in cache keys: changes when the model folder's manifest changes. */
  id?: string;
  name?: string;
  architecture?: string;
  imageSize?: number;
  dtype?: string;
  executionProvider?: string;
  /** Why 'auto' chose that provider (what it tried and measured); absent for an explicit one. */
  providerNotes?: string[];
  /**
   * Where greedy decoding loops: 'graph' = one decoder run per request (decoder-loop.onnx);
   * 'search' = one run of onnxruntime's GreedySearch / BeamSearch op (decoder-search.onnx).
   */
  decodeLoop?: 'host' | 'graph' | 'search';
  /**
   * Most waiting requests the daemon runs together in one batched model call (1: one at a time).
   * Clients with many images keep two batches in flight (one running, the next waiting), and no
   * more (the queue is FIFO); one at a time when this is 1 (`inFlightFor` in daemon/cli/inOrder.ts).
   */
  maxBatch?: number;
  /** Set when a model runs with a known deviation from the reference, e.g. causal prompt attention. */
  warnings?: string[];
  error?: string;
  /** The last loadModel that failed while this model kept serving: which folder, and why. */
  failedLoad?: { path: string; error: string };
}

export interface StatusResult {
  version: string;
  pid: number;
  uptimeMs: number;
  model: ModelStatus;
  queue: { running: number; pending: number; capacity: number };
  memory: { rssBytes: number; heapUsedBytes: number };
  cache: { entries: number; hits: number; misses: number; imageEntries: number };
  clients: number;
  /** 'broker': a cluster worker (`paligemma worker`), serving through NATS. */
  transport: 'stdio' | 'socket' | 'broker';
  /** The Unix socket the shared daemon listens on (socket transport only). */
  socketPath?: string;
  /** The daemon exits this long after its last client disconnects (socket transport only). */
  idleExitMs?: number;
  /** The model is unloaded after this long without requests. */
  keepAliveMs: number;
}

export interface StopResult {
  pid: number;
}

/** The minimal LSP lifecycle, so vscode-languageclient's LanguageClient can drive a connection. */
export interface InitializeResult {
  capabilities: Record<string, never>;
  serverInfo: { name: string; version: string };
}

export interface TokenNotification {
  streamId: string;
  /** The text decoded so far (special tokens removed). */
  text: string;
  tokenId: number;
}

export interface ProgressNotification {
  kind: 'loadModel' | 'convert' | 'download';
  message: string;
  /** 0..1 when known. */
  fraction?: number;
  done?: boolean;
}

export interface LogNotification {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

/** Stable error codes, in the JSON-RPC server-defined range (plus the standard ones reused). */
export const ErrorCodes = {
  NotFound: -32001,
  NotAFile: -32002,
  EmptyFile: -32003,
  UnsupportedImage: -32004,
  CorruptImage: -32005,
  TooManyPixels: -32006,
  FileTooLarge: -32007,
  PromptTooLong: -32008,
  ModelMissing: -32009,
  ModelInvalid: -32010,
  ProviderUnavailable: -32011,
  Busy: -32012,
  /** The daemon is stopping and takes no new work. */
  ShuttingDown: -32013,
  /** A `cacheOnly` request whose answer has not been computed yet. */
  NotCached: -32014,
  Cancelled: -32800,
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export namespace Caption {
  export const method = 'paligemma/caption';
  export const type = new RequestType<CaptionParams, TextResult, void>(method);
}
export namespace Ocr {
  export const method = 'paligemma/ocr';
  export const type = new RequestType<OcrParams, TextResult, void>(method);
}
export namespace Detect {
  export const method = 'paligemma/detect';
  export const type = new RequestType<DetectParams, ObjectsResult, void>(method);
}
export namespace Answer {
  export const method = 'paligemma/answer';
  export const type = new RequestType<AnswerParams, TextResult, void>(method);
}
export namespace Segment {
  export const method = 'paligemma/segment';
  export const type = new RequestType<SegmentParams, ObjectsResult, void>(method);
}
export namespace Generate {
  export const method = 'paligemma/generate';
  export const type = new RequestType<GenerateParams, GenerateResult, void>(method);
}
export namespace Status {
  export const method = 'paligemma/status';
  export const type = new RequestType0<StatusResult, void>(method);
}
export namespace LoadModel {
  export const method = 'paligemma/loadModel';
  export const type = new RequestType<LoadModelParams, ModelStatus, void>(method);
}
export namespace UnloadModel {
  export const method = 'paligemma/unloadModel';
  export const type = new RequestType0<ModelStatus, void>(method);
}
/** Asks the shared daemon to exit: in-flight work is cancelled, every client is disconnected. */
export namespace Stop {
  export const method = 'paligemma/stop';
  export const type = new RequestType0<StopResult, void>(method);
}

// LSP lifecycle, answered per connection: `exit` closes only the connection that sent it.
export namespace Initialize {
  export const method = 'initialize';
  export const type = new RequestType<unknown, InitializeResult, void>(method);
}
export namespace Initialized {
  export const method = 'initialized';
  export const type = new NotificationType<unknown>(method);
}
export namespace Shutdown {
  export const method = 'shutdown';
  export const type = new RequestType0<null, void>(method);
}
export namespace Exit {
  export const method = 'exit';
  export const type = new NotificationType0(method);
}

export namespace TokenStream {
  export const method = 'paligemma/token';
  export const type = new NotificationType<TokenNotification>(method);
}
export namespace Progress {
  export const method = 'paligemma/progress';
  export const type = new NotificationType<ProgressNotification>(method);
}
export namespace ModelChanged {
  export const method = 'paligemma/modelChanged';
  export const type = new NotificationType<ModelStatus>(method);
}

// `paligemma lsp`, the language server: what an editor may say in `initializationOptions`, and
// the one notification beyond LSP (VS Code's extension sends it when the workspace becomes trusted).
export interface LspInitializationOptions {
  /** The `paligemma` settings, for clients that do not answer `workspace/configuration` (also read from `paligemma`). */
  settings?: unknown;
  paligemma?: unknown;
  /** The workspace is trusted; without it the model never runs by itself (describe on hover). Default true. */
  trusted?: boolean;
  /** The client renders Markdown images in hovers: show a thumbnail. */
  thumbnails?: boolean;
  /** Commands that `command:` links in hovers may run (registered by the client). */
  hoverCommands?: string[];
}
export interface LspTrustParams {
  trusted: boolean;
}
export namespace LspTrust {
  export const method = 'paligemma/didChangeTrust';
  export const type = new NotificationType<LspTrustParams>(method);
}

/** How a Hugging Face repo holds a model: a transformers.js ONNX export, or a checkpoint to convert. */
export type RepoLayout = 'onnx-community' | 'checkpoint';

/** A model download's progress (`paligemma download --json` prints one per line). */
export interface DownloadProgress {
  phase: 'resolve' | 'download' | 'install' | 'convert' | 'done';
  /** Bytes of the whole download, counting files already present from an earlier run. */
  bytes: number;
  total: number;
  file?: string;
  fileBytes?: number;
  fileTotal?: number;
  /** Conversion progress, 0..1. */
  fraction?: number;
  message?: string;
}

/** What a finished model download installed. */
export interface DownloadResult {
  path: string;
  repo: string;
  commit: string;
  layout: RepoLayout;
  variant?: string;
  totalBytes: number;
  /** Bytes fetched by this run (less than totalBytes after a resume). */
  downloadedBytes: number;
  alreadyInstalled: boolean;
  /** False for a checkpoint installed without conversion (see `pending`). */
  converted: boolean;
  pending?: string;
}
