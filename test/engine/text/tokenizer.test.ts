import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { encodePrompt } from '../../../daemon/engine/text/prompt.js';
import { TextStream } from '../../../daemon/engine/text/stream.js';
import { loadTokenizer, tokenizerFromJson, type TextTokenizer } from '../../../daemon/engine/text/tokenizer.js';
import { golden, hfReference, MODELS, rng, tokenizerFile } from './fixtures.js';

function promptIds(tok: TextTokenizer, imageId: number) {
  const bos = tok.tokenId('<bos>')!;
  const newline = tok.tokenId('\n')!;
  return { bos, image: imageId, newline };
}

function streamed(tok: TextTokenizer, ids: readonly number[], skipSpecialTokens = true): { text: string; pieces: string[] } {
  const s = new TextStream(tok, skipSpecialTokens);
  const pieces = ids.map((id) => s.push(id));
  pieces.push(s.flush());
  return { text: pieces.join(''), pieces };
}

for (const model of MODELS) {
  test(`prompt ids equal the HF processor's for all cases of ${model}`, async () => {
    const tok = await loadTokenizer(tokenizerFile(model));
    const g = golden(model);
    assert.equal(g.cases.length, 15);
    for (const c of g.cases) {
      const numImage = c.input_ids.filter((id) => id === g.image_token_id).length;
      assert.deepEqual(encodePrompt(tok, promptIds(tok, g.image_token_id), c.prompt, numImage), c.input_ids, c.prompt);
    }
  });

  test(`decoding equals HF decode (skip_special_tokens true and false) for all cases of ${model}`, async () => {
    const tok = await loadTokenizer(tokenizerFile(model));
    for (const c of golden(model).cases) {
      assert.equal(tok.decode(c.generated_ids), c.generated_text, `${c.image} ${c.prompt}`);
      assert.equal(tok.decode(c.generated_ids, { skipSpecialTokens: false }), c.generated_text_raw, `${c.image} ${c.prompt} raw`);
      const s = streamed(tok, c.generated_ids);
      assert.equal(s.text, c.generated_text, `${c.image} ${c.prompt} streamed`);
      // no byte token is pending here, so after each token the text so far is out already
      let sofar = '';
      c.generated_ids.forEach((_, k) => {
        sofar += s.pieces[k];
        assert.equal(sofar, tok.decode(c.generated_ids.slice(0, k + 1)), `${c.image} ${c.prompt} after ${k + 1} tokens`);
      });
    }
  });
}

test('<locNNNN>, <segNNN> and <image> are single tokens; ids come from the tokenizer', async () => {
  const tok = await loadTokenizer(tokenizerFile('tiny-paligemma-224'));
  const g = golden('tiny-paligemma-224');
  assert.equal(tok.tokenId('<image>'), g.image_token_id);
  const loc0 = tok.tokenId('<loc0000>')!;
  const seg0 = tok.tokenId('<seg000>')!;
  assert.equal(tok.tokenId('<loc1023>'), loc0 + 1023);
  assert.equal(tok.tokenId('<seg127>'), seg0 + 127);
  assert.deepEqual(tok.encode('<loc0512>'), [loc0 + 512]);
  assert.deepEqual(tok.encode('<seg064>'), [seg0 + 64]);
  assert.deepEqual(tok.encode('<image>'), [g.image_token_id]);
  assert.deepEqual(tok.encode('<loc0001> <loc0002> <seg003>'), [loc0 + 1, loc0 + 2, seg0 + 3]);
  // adjacent ones too, with a Gemma pipeline (this fixture's Prepend normalizer matches its
  // `normalized` added tokens only after a space; real PaliGemma tokenizers have no Prepend)
  const gemma = gemmaPipelineTokenizer();
  assert.deepEqual(gemma.encode('<loc0001><loc0002><seg003><image>'), [loc0 + 1, loc0 + 2, seg0 + 3, g.image_token_id]);
});

/** The fixture tokenizer with the pipeline transformers 5 gives every Gemma tokenizer. */
function gemmaPipelineTokenizer(): TextTokenizer {
  const json = JSON.parse(readFileSync(tokenizerFile('tiny-paligemma-224'), 'utf8')) as { normalizer: unknown; decoder: unknown };
  json.normalizer = { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' };
  const decoders = (json.decoder as { decoders: { type: string }[] }).decoders;
  json.decoder = { type: 'Sequence', decoders: decoders.filter((d) => d.type !== 'Strip') };
  return tokenizerFromJson(json);
}

test('matches the Rust tokenizer on unicode, byte fallback, spacing, unknown ids and random ids', () => {
  const tok = gemmaPipelineTokenizer();
  const ref = hfReference();
  const ids = promptIds(tok, 2052);
  for (const [prompt, want] of Object.entries(ref.prompts)) {
    assert.deepEqual(encodePrompt(tok, ids, prompt, 256).slice(-want.length), want, JSON.stringify(prompt));
  }
  for (const [name, [skip, raw, , seq]] of Object.entries(ref.decodes)) {
    assert.equal(tok.decode(seq), skip, name);
    assert.equal(tok.decode(seq, { skipSpecialTokens: false }), raw, `${name} raw`);
  }
  assert.equal(ref.random.length, 40);
  for (const [seq, skip, raw] of ref.random) {
    assert.equal(tok.decode(seq), skip, JSON.stringify(seq));
    assert.equal(tok.decode(seq, { skipSpecialTokens: false }), raw, `${JSON.stringify(seq)} raw`);
    assert.equal(streamed(tok, seq).text, skip, `${JSON.stringify(seq)} streamed`);
  }
});

test('streaming holds back an incomplete UTF-8 character instead of emitting U+FFFD', () => {
  const tok = gemmaPipelineTokenizer();
  const text = 'café 日本 😀 ok';
  const seq = tok.encode(text);
  assert.ok(seq.filter((id) => tok.isByteToken(tok.token(id)!)).length >= 7, 'the CJK and emoji go through byte tokens');
  // this fixture marks byte tokens special, so they show only when special tokens are kept
  const { text: out, pieces } = streamed(tok, seq, false);
  assert.equal(out, tok.decode(seq, { skipSpecialTokens: false }));
  assert.equal(out, text);
  assert.ok(
    pieces.every((p) => !p.includes('\uFFFD')),
    JSON.stringify(pieces),
  );
  // a sequence that ends mid-character shows U+FFFD only at the end, as a full decode does
  const cut = seq.slice(0, seq.findIndex((id) => tok.isByteToken(tok.token(id)!)) + 1);
  assert.equal(streamed(tok, cut, false).text, tok.decode(cut, { skipSpecialTokens: false }));
  assert.ok(tok.decode(cut, { skipSpecialTokens: false }).endsWith('\uFFFD'));
});

test('encodePrompt refuses newlines and special tokens, and checks the length', async () => {
  const tok = await loadTokenizer(tokenizerFile('tiny-paligemma2-224'));
  const ids = promptIds(tok, 2052);
  assert.throws(() => encodePrompt(tok, ids, 'caption en\nocr', 256), { name: 'EngineError', code: 'invalid-params', message: /single line/ });
  assert.throws(() => encodePrompt(tok, ids, 'answer en why<eos>', 256), { code: 'invalid-params', message: /special token <eos>/ });
  assert.throws(() => encodePrompt(tok, ids, 'caption <image> en', 256), { code: 'invalid-params', message: /special token <image>/ });
  const n = encodePrompt(tok, ids, 'ocr', 256).length;
  assert.equal(encodePrompt(tok, ids, 'ocr', 256, { maxTokens: n }).length, n);
  assert.throws(() => encodePrompt(tok, ids, 'ocr', 256, { maxTokens: n - 1 }), { code: 'prompt-too-long', message: new RegExp(`needs ${n} tokens`) });
  // loc tokens are ordinary text for prompts (region prompts use them)
  assert.equal(encodePrompt(tok, ids, 'answer en <loc0001>', 4).includes(tok.tokenId('<loc0001>')!), true);
});

test('loading a missing or broken tokenizer.json is a model error', async () => {
  await assert.rejects(loadTokenizer('/nonexistent/tokenizer.json'), { code: 'model-missing' });
  assert.throws(() => tokenizerFromJson({ version: '1.0' }), { code: 'model-invalid' });
});

/** The quadratic definition of streaming, as an oracle: decode everything (but a trailing byte run) on every push. */
function naiveStream(tok: TextTokenizer, ids: readonly number[], skipSpecialTokens: boolean): string[] {
  const pieces: string[] = [];
  let emitted = '';
  const advance = (stable: string) => {
    if (!stable.startsWith(emitted)) return '';
    const delta = stable.slice(emitted.length);
    emitted = stable;
    return delta;
  };
  for (let k = 1; k <= ids.length; k++) {
    const tokens = tok.tokens(ids.slice(0, k), skipSpecialTokens);
    let end = tokens.length;
    while (end > 0 && tok.isByteToken(tokens[end - 1])) end--;
    pieces.push(advance(tok.decodeTokens(tokens.slice(0, end))));
  }
  pieces.push(advance(tok.decode(ids, { skipSpecialTokens })));
  return pieces;
}

/** Random ids biased towards what makes streaming hard: byte runs (valid, cut, invalid), '▁', specials, unknown ids. */
function randomIds(tok: TextTokenizer, n: number, seed: number): number[] {
  const r = rng(seed);
  const byteId = (b: number) => tok.tokenId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!;
  const space = tok.tokenId('\u2581')!;
  const ids: number[] = [];
  while (ids.length < n) {
    const x = r();
    if (x < 0.2) {
      const cp = [0xe9, 0x65e5, 0x1f600, 0x20ac, 0x41][Math.floor(r() * 5)];
      let bytes = [...new TextEncoder().encode(String.fromCodePoint(cp))];
      if (r() < 0.15) bytes = bytes.slice(0, 1 + Math.floor(r() * bytes.length)); // cut short
      if (r() < 0.05) bytes.push(0x80 + Math.floor(r() * 64)); // a stray continuation byte
      ids.push(...bytes.map(byteId));
    } else if (x < 0.3) ids.push(space);
    else ids.push(Math.floor(r() * 2100)); // the vocabulary, added tokens and ids past it
  }
  return ids.slice(0, n);
}

test('incremental streaming equals the full decode and the decode-everything stream on long random id sequences', () => {
  const fixture = tokenizerFromJson(JSON.parse(readFileSync(tokenizerFile('tiny-paligemma-224'), 'utf8')));
  for (const [name, tok] of [
    ['fixture (Strip decoder)', fixture],
    ['Gemma pipeline', gemmaPipelineTokenizer()],
  ] as const) {
    for (const skipSpecialTokens of [true, false]) {
      for (const seed of [1, 2]) {
        const ids = randomIds(tok, 800, seed);
        const msg = `${name} skipSpecialTokens=${skipSpecialTokens} seed=${seed}`;
        // count the tokens each decode sees: the window must stay short however long the output
        const decodeTokens = tok.decodeTokens.bind(tok);
        let longest = 0;
        tok.decodeTokens = (tokens) => ((longest = Math.max(longest, tokens.length)), decodeTokens(tokens));
        let got;
        try {
          got = streamed(tok, ids, skipSpecialTokens);
        } finally {
          delete (tok as Partial<TextTokenizer>).decodeTokens;
        }
        assert.equal(got.text, tok.decode(ids, { skipSpecialTokens }), msg);
        assert.deepEqual(got.pieces, naiveStream(tok, ids, skipSpecialTokens), msg);
        assert.ok(longest < 40, `${msg}: a push decoded ${longest} tokens`);
      }
    }
  }
});
