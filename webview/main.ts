// The image inspector's webview script. It only speaks to the extension host by messages
// (webview/messages.ts); the host does every daemon request.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-divider/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { DetectedObject } from '../daemon/protocol.js';
import { boxToPercent, decodeRle, labelColorIndex, maskArea } from './geometry.js';
import type { HostMessage, InspectorState, InspectorTask, TaskResult, WebviewMessage } from './messages.js';
import { imageSrc, parseObjectList, restoreState, withImage, withResult } from './state.js';
import { TASK_LABELS } from './tasks.js';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: InspectorState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const PALETTE_SIZE = 6; // media/inspector.css defines .color-0 .. .color-5 from --vscode-charts-*

let state: InspectorState = restoreState(vscode.getState());
/** Requests in flight: id -> task, so results and errors land in the right place. */
const running = new Map<string, InspectorTask>();
let nextRequest = 0;

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`inspector markup lacks #${id}`);
  return el;
}

function post(message: WebviewMessage): void {
  vscode.postMessage(message);
}

function save(): void {
  vscode.setState(state);
}

// ---- running tasks -------------------------------------------------------------------------

function run(task: InspectorTask): void {
  if (!state.image) {
    showError('Open, paste or drop an image first.');
    return;
  }
  const requestId = `r${Date.now().toString(36)}-${nextRequest++}`;
  running.set(requestId, task);
  showError(undefined);
  renderBusy();
  post({ type: 'run', requestId, task });
}

function cancelAll(): void {
  for (const requestId of running.keys()) post({ type: 'cancel', requestId });
}

function onResult(requestId: string, result: TaskResult): void {
  if (!running.delete(requestId)) return; // cancelled, or from before a reload
  state = withResult(state, result);
  save();
  renderBusy();
  renderResults();
}

function onPartial(requestId: string, text: string): void {
  const task = running.get(requestId);
  if (!task) return;
  const target = task.kind === 'caption' ? 'caption' : task.kind === 'ocr' ? 'ocr' : task.kind === 'answer' ? 'answer-partial' : undefined;
  if (target) {
    const el = $(target);
    el.textContent = text;
    el.classList.add('streaming');
  }
}

// ---- rendering -----------------------------------------------------------------------------

function renderImage(): void {
  const img = $('image') as HTMLImageElement;
  const empty = $('empty');
  const stage = $('stage');
  if (!state.image) {
    stage.hidden = true;
    empty.hidden = false;
    $('image-name').textContent = '';
    return;
  }
  empty.hidden = true;
  stage.hidden = false;
  $('image-name').textContent = state.image.source.name;
  const src = imageSrc(state.image);
  if (img.getAttribute('src') !== src) {
    img.alt = state.image.source.name;
    img.src = src;
  }
}

function renderBusy(): void {
  const busy = running.size > 0;
  $('busy').hidden = !busy;
  document.body.classList.toggle('busy', busy);
  const kinds = [...running.values()].map((t) => TASK_LABELS[t.kind].running);
  $('busy-text').textContent = busy ? `${kinds.join(', ')}…` : '';
}

function renderResults(): void {
  const caption = state.results.caption;
  setText('caption', caption && caption.kind === 'caption' ? caption.text : '', 'No caption yet.');
  const ocr = state.results.ocr;
  const ocrText = ocr && ocr.kind === 'ocr' ? ocr.text : '';
  setText('ocr', ocrText, 'No text extracted yet.');
  ($('copy-ocr') as HTMLElement & { disabled: boolean }).disabled = ocrText.length === 0;
  setMeta('caption-meta', caption);
  setMeta('ocr-meta', ocr);

  const answers = $('answers');
  answers.replaceChildren(
    ...state.answers.map((a) => {
      const item = document.createElement('li');
      const q = document.createElement('div');
      q.className = 'question';
      q.textContent = a.question;
      const ans = document.createElement('div');
      ans.className = 'answer';
      ans.textContent = a.text.length > 0 ? a.text : '(empty answer)';
      item.append(q, ans);
      return item;
    }),
  );
  const partial = $('answer-partial');
  partial.textContent = '';
  partial.classList.remove('streaming');

  renderObjects();
}

function setText(id: string, text: string, placeholder: string): void {
  const el = $(id);
  el.classList.remove('streaming');
  el.classList.toggle('placeholder', text.length === 0);
  el.textContent = text.length > 0 ? text : placeholder;
}

function setMeta(id: string, result: TaskResult | undefined): void {
  $(id).textContent = result ? `${result.meta.model} · ${Math.round(result.meta.ms)} ms${result.meta.cached ? ' · cached' : ''}` : '';
}

function renderObjects(): void {
  const overlay = $('overlay');
  const list = $('objects');
  const result = state.results.objects;
  const img = $('image') as HTMLImageElement;
  overlay.replaceChildren();
  list.replaceChildren();
  if (!result || (result.kind !== 'detect' && result.kind !== 'segment')) {
    $('objects-summary').textContent = 'Nothing detected yet.';
    return;
  }
  const objects = result.objects;
  $('objects-summary').textContent =
    objects.length === 0
      ? `No ${result.query.join(', ')} found.`
      : `${objects.length} object${objects.length === 1 ? '' : 's'} (${result.kind === 'segment' ? 'segment' : 'detect'} ${result.query.join('; ')})`;
  setMeta('objects-meta', result);
  // Boxes are in the image's own pixels; they need its natural size, known once it has loaded.
  if (!img.complete || img.naturalWidth === 0) return;
  objects.forEach((obj, i) => {
    overlay.append(boxElement(obj, i, img.naturalWidth, img.naturalHeight));
    const item = document.createElement('li');
    item.className = `object color-${labelColorIndex(obj.label, PALETTE_SIZE)}`;
    item.dataset.index = String(i);
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    const text = document.createElement('span');
    const { x0, y0, x1, y1 } = obj.box;
    text.textContent = `${obj.label || '(no label)'} — ${Math.round(x0)},${Math.round(y0)} → ${Math.round(x1)},${Math.round(y1)}`;
    item.append(swatch, text);
    item.addEventListener('mouseenter', () => highlight(i, true));
    item.addEventListener('mouseleave', () => highlight(i, false));
    list.append(item);
  });
}

function highlight(index: number, on: boolean): void {
  document.querySelector(`#overlay .box[data-index="${index}"]`)?.classList.toggle('highlight', on);
}

/** One detection as a positioned div (so tests and screen readers can find it), its mask as a canvas inside. */
function boxElement(obj: DetectedObject, index: number, width: number, height: number): HTMLElement {
  const el = document.createElement('div');
  el.className = `box color-${labelColorIndex(obj.label, PALETTE_SIZE)}`;
  el.dataset.index = String(index);
  el.dataset.label = obj.label;
  el.dataset.box = [obj.box.x0, obj.box.y0, obj.box.x1, obj.box.y1].map((v) => Math.round(v)).join(',');
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', obj.label || 'object');
  const rect = boxToPercent(obj.box, width, height);
  if (rect) {
    el.style.left = `${rect.left}%`;
    el.style.top = `${rect.top}%`;
    el.style.width = `${rect.width}%`;
    el.style.height = `${rect.height}%`;
  } else {
    el.hidden = true;
  }
  const label = document.createElement('span');
  label.className = 'box-label';
  label.textContent = obj.label || '(no label)';
  el.append(label);
  if (obj.mask) {
    try {
      el.append(maskCanvas(obj, el));
      el.dataset.maskPixels = String(maskArea(obj.mask));
    } catch (err) {
      showError(`Could not draw the mask of "${obj.label}": ${(err as Error).message}`);
    }
  }
  return el;
}

function maskCanvas(obj: DetectedObject, box: HTMLElement): HTMLCanvasElement {
  const mask = obj.mask!;
  const bits = decodeRle(mask);
  const canvas = document.createElement('canvas');
  canvas.className = 'mask';
  canvas.width = Math.max(1, mask.width);
  canvas.height = Math.max(1, mask.height);
  const ctx = canvas.getContext('2d');
  if (!ctx) return canvas;
  // The colour comes from the theme (--vscode-charts-*), resolved through the box's CSS colour.
  document.body.append(box);
  const [r, g, b] = parseRgb(getComputedStyle(box).color);
  box.remove();
  const pixels = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < bits.length; i++) {
    if (!bits[i]) continue;
    pixels.data[i * 4] = r;
    pixels.data[i * 4 + 1] = g;
    pixels.data[i * 4 + 2] = b;
    pixels.data[i * 4 + 3] = 110;
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

function parseRgb(css: string): [number, number, number] {
  const m = /rgba?\((\d+)[, ]+(\d+)[, ]+(\d+)/.exec(css);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [255, 0, 0];
}

function showError(message: string | undefined): void {
  const el = $('error');
  el.hidden = message === undefined;
  el.textContent = message ?? '';
}

// ---- images from outside: paste and drop ---------------------------------------------------

function readImageFile(file: File): void {
  if (!file.type.startsWith('image/')) {
    showError(`${file.name || 'The dropped item'} is not an image (${file.type || 'unknown type'}).`);
    return;
  }
  const reader = new FileReader();
  reader.onerror = () => showError(`Could not read ${file.name || 'the image'}: ${reader.error?.message ?? 'unknown error'}`);
  reader.onload = () => {
    const url = String(reader.result);
    const comma = url.indexOf(',');
    post({ type: 'openData', data: url.slice(comma + 1), mimeType: file.type, name: file.name || 'pasted image' });
  };
  reader.readAsDataURL(file);
}

function onPaste(event: ClipboardEvent): void {
  // Typing into a text field pastes text as usual; only an image on the clipboard opens.
  const file = Array.from(event.clipboardData?.files ?? []).find((f) => f.type.startsWith('image/'));
  if (!file) return;
  event.preventDefault();
  readImageFile(file);
}

function onDrop(event: DragEvent): void {
  event.preventDefault();
  document.body.classList.remove('dragging');
  const dt = event.dataTransfer;
  if (!dt) return;
  const file = Array.from(dt.files).find((f) => f.type.startsWith('image/')) ?? dt.files[0];
  if (file) {
    readImageFile(file);
    return;
  }
  const uri = (dt.getData('text/uri-list') || dt.getData('text/plain')).split(/\r?\n/).find((l) => l && !l.startsWith('#'));
  if (uri) post({ type: 'openUri', uri: uri.trim() });
}

// ---- wiring --------------------------------------------------------------------------------

function valueOf(id: string): string {
  return String(($(id) as HTMLElement & { value: string }).value ?? '');
}

function ask(): void {
  const question = valueOf('question').trim();
  if (!question) {
    showError('Type a question first.');
    return;
  }
  run({ kind: 'answer', question });
}

function objectTask(kind: 'detect' | 'segment'): void {
  const objects = parseObjectList(valueOf('objects-query'));
  if (objects.length === 0) {
    showError(`Type what to ${kind === 'detect' ? 'detect' : 'segment'} (e.g. "cat; dog") first.`);
    ($('objects-query') as HTMLElement).focus();
    return;
  }
  run(kind === 'detect' ? { kind: 'detect', objects } : { kind: 'segment', object: objects[0] });
}

function onHostMessage(message: HostMessage): void {
  switch (message.type) {
    case 'image':
      state = withImage(state, message.image);
      save();
      renderImage();
      renderResults();
      break;
    case 'partial':
      onPartial(message.requestId, message.text);
      break;
    case 'result':
      onResult(message.requestId, message.result);
      break;
    case 'error':
      if (message.requestId !== undefined) {
        running.delete(message.requestId);
        renderBusy();
        renderResults();
      }
      showError(message.message);
      break;
    case 'runTask':
      if (message.task.kind === 'detect' || message.task.kind === 'segment') {
        const query = message.task.kind === 'detect' ? message.task.objects.join('; ') : message.task.object;
        ($('objects-query') as HTMLElement & { value: string }).value = query;
        state = { ...state, objectsQuery: query };
        save();
      }
      run(message.task);
      break;
  }
}

function main(): void {
  $('describe').addEventListener('click', () => run({ kind: 'caption' }));
  $('extract').addEventListener('click', () => run({ kind: 'ocr' }));
  $('detect').addEventListener('click', () => objectTask('detect'));
  $('segment').addEventListener('click', () => objectTask('segment'));
  $('ask').addEventListener('click', ask);
  $('cancel').addEventListener('click', cancelAll);
  $('open').addEventListener('click', () => post({ type: 'pickImage' }));
  $('open-empty').addEventListener('click', () => post({ type: 'pickImage' }));
  $('copy-ocr').addEventListener('click', () => {
    const ocr = state.results.ocr;
    if (ocr && ocr.kind === 'ocr') post({ type: 'copy', text: ocr.text });
  });
  const question = $('question') as HTMLElement & { value: string };
  const objects = $('objects-query') as HTMLElement & { value: string };
  question.value = state.question;
  objects.value = state.objectsQuery;
  question.addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') ask();
  });
  question.addEventListener('input', () => {
    state = { ...state, question: question.value };
    save();
  });
  objects.addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') objectTask('detect');
  });
  objects.addEventListener('input', () => {
    state = { ...state, objectsQuery: objects.value };
    save();
  });
  ($('image') as HTMLImageElement).addEventListener('load', renderObjects);
  ($('image') as HTMLImageElement).addEventListener('error', () => {
    if (state.image) showError(`Could not display ${state.image.source.name}.`);
  });
  document.addEventListener('paste', onPaste);
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', onDrop);
  window.addEventListener('message', (event: MessageEvent<HostMessage>) => onHostMessage(event.data));

  renderImage();
  renderResults();
  renderBusy();
  post({ type: 'ready' });
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
  else main();
}
