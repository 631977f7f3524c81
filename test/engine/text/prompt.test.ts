import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPrompt, oneLine, type PromptTask } from '../../../daemon/engine/text/prompt.js';

test('task prefixes of the PaliGemma mix checkpoints', () => {
  assert.equal(buildPrompt({ task: 'caption' }), 'caption en');
  assert.equal(buildPrompt({ task: 'caption', lang: 'de', detail: 'short' }), 'caption de');
  assert.equal(buildPrompt({ task: 'caption', lang: 'zh-TW', detail: 'long' }), 'describe zh-TW');
  assert.equal(buildPrompt({ task: 'ocr' }), 'ocr');
  assert.equal(buildPrompt({ task: 'answer', question: 'what color is the circle?' }), 'answer en what color is the circle?');
  assert.equal(buildPrompt({ task: 'answer', lang: 'fr', question: '  De quelle couleur ?  ' }), 'answer fr De quelle couleur ?');
  assert.equal(buildPrompt({ task: 'detect', objects: 'red square' }), 'detect red square');
  assert.equal(buildPrompt({ task: 'detect', objects: ['cat', ' dog ', 'red car'] }), 'detect cat ; dog ; red car');
  assert.equal(buildPrompt({ task: 'detect', objects: 'cat;dog ;; ' }), 'detect cat ; dog');
  assert.equal(buildPrompt({ task: 'segment', objects: 'circle' }), 'segment circle');
});

test('user text is kept on one line: a newline would end the prompt', () => {
  assert.equal(buildPrompt({ task: 'answer', question: 'first line\nsecond\r\nthird\u2028end' }), 'answer en first line second third end');
  assert.equal(buildPrompt({ task: 'detect', objects: ['a\nb', 'c'] }), 'detect a b ; c');
  assert.equal(oneLine(' \t x \n\n y\t'), 'x y');
});

test('bad task parameters are invalid-params', () => {
  const bad: [PromptTask, RegExp][] = [
    [{ task: 'answer', question: '' }, /question is empty/],
    [{ task: 'answer', question: ' \n\t ' }, /question is empty/],
    [{ task: 'detect', objects: [] }, /at least one object/],
    [{ task: 'detect', objects: ' ; ;' }, /at least one object/],
    [{ task: 'segment', objects: '\n' }, /at least one object/],
    [{ task: 'caption', lang: 'english please' }, /not a language code/],
    [{ task: 'caption', lang: 'en\nocr' }, /not a language code/],
    [{ task: 'caption', detail: 'medium' } as unknown as PromptTask, /'short' or 'long'/],
    [{ task: 'translate' } as unknown as PromptTask, /unknown task/],
    [{ task: 'answer' } as unknown as PromptTask, /question is empty/],
  ];
  for (const [t, msg] of bad) {
    assert.throws(() => buildPrompt(t), { name: 'EngineError', code: 'invalid-params', message: msg }, JSON.stringify(t));
  }
});
