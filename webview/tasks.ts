// The inspector's task names, shared by the webview (while a task runs) and the extension host
// (in errors): one table so both sides name a task alike.
import type { InspectorTask } from './messages.js';

export const TASK_LABELS: Record<InspectorTask['kind'], { title: string; running: string }> = {
  caption: { title: 'Describe', running: 'Describing' },
  ocr: { title: 'Extract text', running: 'Extracting text' },
  answer: { title: 'Ask', running: 'Answering' },
  detect: { title: 'Detect', running: 'Detecting' },
  segment: { title: 'Segment', running: 'Segmenting' },
};
