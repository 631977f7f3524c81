// The inspector's state transitions, kept free of the DOM so they are unit-tested in Node.
import type { ImageSource, InspectorImage, InspectorState, TaskResult } from './messages.js';

/** Answers kept per image; older ones drop off so the saved state stays small. */
export const MAX_ANSWERS = 20;

export function initialState(): InspectorState {
  return { version: 1, results: {}, answers: [], objectsQuery: '', question: '' };
}

/** Accepts whatever getState() returned: anything not shaped like our state starts fresh. */
export function restoreState(saved: unknown): InspectorState {
  if (!saved || typeof saved !== 'object' || (saved as InspectorState).version !== 1) return initialState();
  const s = saved as InspectorState;
  return {
    version: 1,
    image: s.image,
    results: s.results && typeof s.results === 'object' ? s.results : {},
    answers: Array.isArray(s.answers) ? s.answers.slice(-MAX_ANSWERS) : [],
    objectsQuery: typeof s.objectsQuery === 'string' ? s.objectsQuery : '',
    question: typeof s.question === 'string' ? s.question : '',
  };
}

/** The URL the webview's <img> loads. */
export function imageSrc(image: InspectorImage): string {
  if (image.source.kind === 'data') return `data:${image.source.mimeType};base64,${image.source.data}`;
  return image.src ?? '';
}

export function sameSource(a: ImageSource | undefined, b: ImageSource | undefined): boolean {
  if (!a || !b || a.kind !== b.kind) return false;
  if (a.kind === 'uri' && b.kind === 'uri') return a.uri === b.uri;
  if (a.kind === 'data' && b.kind === 'data') return a.data === b.data;
  return false;
}

/** A new image clears the results of the old one; the same image (a reload) keeps them. */
export function withImage(state: InspectorState, image: InspectorImage): InspectorState {
  if (sameSource(state.image?.source, image.source)) return { ...state, image };
  return { ...state, image, results: {}, answers: [] };
}

export function withResult(state: InspectorState, result: TaskResult): InspectorState {
  switch (result.kind) {
    case 'caption':
    case 'ocr':
      return { ...state, results: { ...state.results, [result.kind]: result } };
    case 'detect':
    case 'segment':
      return { ...state, results: { ...state.results, objects: result } };
    case 'answer':
      return { ...state, answers: [...state.answers, result].slice(-MAX_ANSWERS) };
  }
}

/** "cat; dog , red car" -> ["cat", "dog", "red car"]: PaliGemma separates detect queries with ";". */
export function parseObjectList(text: string): string[] {
  return text
    .split(/[;,\n]/)
    .map((s) => s.trim().replace(/\s+/g, ' '))
    .filter((s) => s.length > 0);
}
