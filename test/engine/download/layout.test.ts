import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectLayout, onnxVariants, planDownload, type RepoFile } from '../../../daemon/engine/download/layout.js';
import { DownloadError } from '../../../daemon/engine/download/errors.js';

const f = (path: string, size = 10): RepoFile => ({ path, size });
const onnxRepo = [
  f('.gitattributes'),
  f('README.md'),
  f('config.json'),
  f('tokenizer.json'),
  f('preprocessor_config.json'),
  ...['vision_encoder', 'embed_tokens', 'decoder_model_merged'].flatMap((g) => [f(`onnx/${g}.onnx`, 100), f(`onnx/${g}_fp16.onnx`, 50), f(`onnx/${g}_q4f16.onnx`, 20)]),
  f('onnx/decoder_model_merged.onnx_data', 1000),
  f('onnx/decoder_model_merged.onnx_data_1', 1000),
  f('onnx/decoder_model_merged_fp16.onnx_data', 500),
  f('onnx/decoder_model_merged_q4.onnx', 5), // no vision/embed graphs in q4: not a complete variant
];

test('onnx-community variants are the suffixes with all three graphs', () => {
  assert.equal(detectLayout(onnxRepo), 'onnx-community');
  assert.deepEqual(onnxVariants(onnxRepo), ['fp16', 'fp32', 'q4f16']);
});

test('a variant takes its three graphs, their sidecars and the top-level json only', () => {
  const fp32 = planDownload('o/r', onnxRepo, 'fp32');
  assert.deepEqual(fp32.files.map((x) => x.path).sort(), [
    'config.json',
    'onnx/decoder_model_merged.onnx',
    'onnx/decoder_model_merged.onnx_data',
    'onnx/decoder_model_merged.onnx_data_1',
    'onnx/embed_tokens.onnx',
    'onnx/vision_encoder.onnx',
    'preprocessor_config.json',
    'tokenizer.json',
  ]);
  const fp16 = planDownload('o/r', onnxRepo, 'fp16');
  assert.deepEqual(
    fp16.files
      .filter((x) => x.path.startsWith('onnx/'))
      .map((x) => x.path)
      .sort(),
    ['onnx/decoder_model_merged_fp16.onnx', 'onnx/decoder_model_merged_fp16.onnx_data', 'onnx/embed_tokens_fp16.onnx', 'onnx/vision_encoder_fp16.onnx'],
  );
  assert.equal(fp16.totalBytes, 3 * 10 + 3 * 50 + 500);
  assert.equal(fp16.variant, 'fp16');
});

test('a missing or ambiguous variant is refused with the list of what exists', () => {
  assert.throws(
    () => planDownload('o/r', onnxRepo),
    (e) => e instanceof DownloadError && e.reason === 'no-variant' && /fp16 \(.*\), fp32 \(.*\), q4f16/.test(e.message),
  );
  assert.throws(() => planDownload('o/r', onnxRepo, 'q4'), /no ONNX variant 'q4'/);
  const single = onnxRepo.filter((x) => !/_(fp16|q4f16|q4)\./.test(x.path));
  assert.equal(planDownload('o/r', single).variant, 'fp32');
});

test('a checkpoint takes safetensors, json and tokenizer.model, and has no variants', () => {
  const ckpt = [
    f('config.json'),
    f('model-00001-of-00002.safetensors'),
    f('model-00002-of-00002.safetensors'),
    f('model.safetensors.index.json'),
    f('tokenizer.model'),
    f('tokenizer.json'),
    f('README.md'),
    f('.gitattributes'),
    f('flax/model.msgpack'),
  ];
  assert.equal(detectLayout(ckpt), 'checkpoint');
  const plan = planDownload('o/r', ckpt);
  assert.deepEqual(plan.files.map((x) => x.path).sort(), [
    'config.json',
    'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors',
    'model.safetensors.index.json',
    'tokenizer.json',
    'tokenizer.model',
  ]);
  assert.throws(() => planDownload('o/r', ckpt, 'fp16'), /no variants/);
  assert.throws(
    () => planDownload('o/r', [f('README.md')]),
    (e) => e instanceof DownloadError && e.reason === 'layout',
  );
});
