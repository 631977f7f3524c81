import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InspectorImage, TaskResult } from '../../webview/messages.js';
import { MAX_ANSWERS, imageSrc, initialState, parseObjectList, restoreState, withImage, withResult } from '../../webview/state.js';

const meta = { model: 'tiny', ms: 12, cached: false };
const fileImage = (uri: string): InspectorImage => ({ source: { kind: 'uri', uri, name: uri.split('/').pop()! }, src: `https://webview/${uri}` });

describe('inspector state', () => {
  it('keeps results when the same image is shown again (a reload) and drops them for another image', () => {
    let s = withImage(initialState(), fileImage('file:///w/a.png'));
    s = withResult(s, { kind: 'caption', text: 'a cat', meta });
    s = withResult(s, { kind: 'answer', question: 'what?', text: 'cat', meta });
    const reloaded = withImage(s, { ...fileImage('file:///w/a.png'), src: 'https://webview2/a.png' });
    assert.equal(reloaded.results.caption?.kind, 'caption');
    assert.equal(reloaded.answers.length, 1);
    assert.equal(reloaded.image?.src, 'https://webview2/a.png');
    const other = withImage(s, fileImage('file:///w/b.png'));
    assert.deepEqual(other.results, {});
    assert.deepEqual(other.answers, []);
  });

  it('keeps one object result: a segmentation replaces a detection', () => {
    let s = withResult(initialState(), { kind: 'detect', query: ['cat'], objects: [], meta });
    const seg: TaskResult = {
      kind: 'segment',
      query: ['cat'],
      objects: [{ label: 'cat', box: { x0: 0, y0: 0, x1: 1, y1: 1 }, mask: { width: 1, height: 1, rle: [0, 1] } }],
      meta,
    };
    s = withResult(s, seg);
    assert.equal(s.results.objects, seg);
  });

  it('caps the answer history', () => {
    let s = initialState();
    for (let i = 0; i < MAX_ANSWERS + 5; i++) s = withResult(s, { kind: 'answer', question: `q${i}`, text: `a${i}`, meta });
    assert.equal(s.answers.length, MAX_ANSWERS);
    assert.equal(s.answers[0].question, 'q5');
  });

  it('restores only states it recognises', () => {
    assert.deepEqual(restoreState(undefined), initialState());
    assert.deepEqual(restoreState({ version: 2, results: { caption: 1 } }), initialState());
    const saved = { ...initialState(), question: 'why?', answers: 'oops' };
    const restored = restoreState(saved);
    assert.equal(restored.question, 'why?');
    assert.deepEqual(restored.answers, []);
  });

  it('shows data images from their own bytes', () => {
    assert.equal(imageSrc({ source: { kind: 'data', data: 'AAAA', mimeType: 'image/png', name: 'p' } }), 'data:image/png;base64,AAAA');
    assert.equal(imageSrc(fileImage('file:///w/a.png')), 'https://webview/file:///w/a.png');
  });

  it('splits object queries on ; , and newlines', () => {
    assert.deepEqual(parseObjectList(' cat;  dog ,red   car\n\n;'), ['cat', 'dog', 'red car']);
    assert.deepEqual(parseObjectList('  '), []);
  });
});
