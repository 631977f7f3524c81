// Messages between the image inspector webview and its extension host, imported by both sides.
// Types only: the webview bundle and the extension bundle each get nothing at run time from here.
import type { DetectedObject, ResultMeta } from '../daemon/protocol.js';

/** Where the inspected image comes from; kept in the webview state so a restored panel can re-run tasks. */
export type ImageSource =
  | { kind: 'uri'; uri: string; name: string }
  /** A pasted or dropped image, base64 without the `data:` prefix. */
  | { kind: 'data'; data: string; mimeType: string; name: string };

/** What the webview needs to show the image. */
export interface InspectorImage {
  source: ImageSource;
  /** The webview URI of a file; absent for data sources, which are shown from their own data. */
  src?: string;
}

export type InspectorTask =
  | { kind: 'caption'; detail?: 'short' | 'long' }
  | { kind: 'ocr' }
  | { kind: 'answer'; question: string }
  | { kind: 'detect'; objects: string[] }
  | { kind: 'segment'; object: string };

export type TaskKind = InspectorTask['kind'];

export type TaskResult =
  | { kind: 'caption'; text: string; meta: ResultMeta }
  | { kind: 'ocr'; text: string; meta: ResultMeta }
  | { kind: 'answer'; question: string; text: string; meta: ResultMeta }
  | { kind: 'detect'; query: string[]; objects: DetectedObject[]; meta: ResultMeta }
  | { kind: 'segment'; query: string[]; objects: DetectedObject[]; meta: ResultMeta };

/** webview -> host */
export type WebviewMessage =
  /** Sent once the script runs; the host answers with `image` (or nothing when no image is known yet). */
  | { type: 'ready' }
  | { type: 'run'; requestId: string; task: InspectorTask }
  | { type: 'cancel'; requestId: string }
  /** An image pasted or dropped into the webview. */
  | { type: 'openData'; data: string; mimeType: string; name: string }
  /** A file dragged in from the explorer (text/uri-list). */
  | { type: 'openUri'; uri: string }
  /** Ask the host to show an "Open image" dialog. */
  | { type: 'pickImage' }
  | { type: 'copy'; text: string };

/** host -> webview */
export type HostMessage =
  | { type: 'image'; image: InspectorImage }
  /** Text decoded so far for a running request (when the daemon streams tokens). */
  | { type: 'partial'; requestId: string; text: string }
  | { type: 'result'; requestId: string; result: TaskResult }
  | { type: 'error'; requestId?: string; message: string }
  /** Runs a task as if its button was pressed (used by commands such as "Detect objects in image"). */
  | { type: 'runTask'; task: InspectorTask };

/** What the webview keeps with setState and the panel serializer hands back after a reload. */
export interface InspectorState {
  version: 1;
  image?: InspectorImage;
  results: Partial<Record<'caption' | 'ocr' | 'objects', TaskResult>>;
  answers: Array<Extract<TaskResult, { kind: 'answer' }>>;
  objectsQuery: string;
  question: string;
}
