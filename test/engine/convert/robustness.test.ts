// Bad input gives a specific EngineError and never leaves an output (or temp) folder behind.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../../../daemon/engine/convert/index.js';
import { isEngineError, type EngineErrorCode } from '../../../daemon/engine/errors.js';
import { copyFixture, leftovers, readSafetensors, removeDir, tempDir, writeSafetensors } from './helpers.js';

const MODEL = 'tiny-paligemma-224';

describe('converter errors', () => {
  let root: string;
  before(() => {
    root = tempDir('robust');
  });
  after(() => removeDir(root));

  /** A fresh writable checkpoint copy, changed by `edit`, converted into a fresh folder. */
  async function expectFailure(name: string, edit: (ckpt: string) => void, code: EngineErrorCode, message: RegExp, extra: object = {}) {
    const work = join(root, name);
    mkdirSync(work);
    const ckpt = copyFixture(MODEL, work);
    edit(ckpt);
    const outParent = join(work, 'outdir');
    mkdirSync(outParent);
    await assert.rejects(convert({ input: ckpt, output: join(outParent, 'out'), ...extra }), (e: unknown) => {
      assert.ok(isEngineError(e), `not an EngineError: ${e}`);
      assert.equal(e.code, code, e.message);
      assert.match(e.message, message);
      return true;
    });
    assert.deepEqual(leftovers(outParent), [], 'no output or temp folder left');
  }

  it('missing checkpoint folder', async () => {
    const out = join(root, 'nothing-out');
    await assert.rejects(convert({ input: join(root, 'does-not-exist'), output: out }), (e: unknown) => isEngineError(e, 'model-missing'));
    assert.equal(existsSync(out), false);
  });

  it('missing config.json', () => expectFailure('no-config', (d) => rmSync(join(d, 'config.json')), 'model-missing', /config\.json/));
  it('missing tokenizer.json', () => expectFailure('no-tok', (d) => rmSync(join(d, 'tokenizer.json')), 'model-missing', /tokenizer\.json/));
  it('missing weights', () => expectFailure('no-weights', (d) => rmSync(join(d, 'model.safetensors')), 'model-missing', /model\.safetensors/));
  it('missing processor config', () =>
    expectFailure('no-proc', (d) => rmSync(join(d, 'processor_config.json')), 'model-missing', /processor_config\.json or preprocessor_config\.json/));

  it('unknown model_type', () =>
    expectFailure(
      'llava',
      (d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        c.model_type = 'llava';
        writeFileSync(join(d, 'config.json'), JSON.stringify(c));
      },
      'model-invalid',
      /model_type "llava" is not supported/,
    ));

  it('unknown text model_type', () =>
    expectFailure(
      'llama',
      (d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        c.text_config.model_type = 'llama';
        writeFileSync(join(d, 'config.json'), JSON.stringify(c));
      },
      'model-invalid',
      /text model_type "llama"/,
    ));

  it('config / weight shape mismatch', () =>
    expectFailure(
      'shape',
      (d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        c.text_config.intermediate_size = 256;
        writeFileSync(join(d, 'config.json'), JSON.stringify(c));
      },
      'model-invalid',
      /mlp\.(gate|up|down)_proj\.weight has shape \[.*\] but config\.json implies/,
    ));

  it('tensor missing from the checkpoint', () =>
    expectFailure(
      'missing-tensor',
      (d) => {
        const t = readSafetensors(join(d, 'model.safetensors'));
        delete t['language_model.model.layers.1.mlp.up_proj.weight'];
        writeSafetensors(join(d, 'model.safetensors'), t);
      },
      'model-invalid',
      /no tensor language_model\.model\.layers\.1\.mlp\.up_proj\.weight/,
    ));

  it('corrupt safetensors header (length beyond the file)', () =>
    expectFailure(
      'corrupt-len',
      (d) => {
        const p = join(d, 'model.safetensors');
        const b = readFileSync(p);
        b.writeBigUInt64LE(BigInt(b.length * 4), 0);
        writeFileSync(p, b);
      },
      'model-invalid',
      /not a valid safetensors file \(header length/,
    ));

  it('corrupt safetensors header (not JSON)', () =>
    expectFailure(
      'corrupt-json',
      (d) => {
        const p = join(d, 'model.safetensors');
        const b = readFileSync(p);
        b.fill(0x7b, 8, 40);
        writeFileSync(p, b);
      },
      'model-invalid',
      /header is not JSON/,
    ));

  it('truncated safetensors data', () =>
    expectFailure(
      'truncated',
      (d) => {
        const p = join(d, 'model.safetensors');
        writeFileSync(p, readFileSync(p).subarray(0, 500_000));
      },
      'model-invalid',
      /points outside the file/,
    ));

  it('out of disk space while writing', async () => {
    const fs = await import('node:fs');
    let budget = 200_000;
    const full = ((fd: number, buf: Uint8Array, off?: number, len?: number, pos?: number) => {
      const n = len ?? buf.length;
      if ((budget -= n) < 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return fs.writeSync(fd, buf, off, n, pos);
    }) as typeof fs.writeSync;
    await expectFailure('enospc', () => {}, 'convert-failed', /out of disk space/, { writeSync: full });
  });

  it('refuses to overwrite an existing output unless asked', async () => {
    const work = join(root, 'exists');
    mkdirSync(join(work, 'out'), { recursive: true });
    writeFileSync(join(work, 'out', 'keep.txt'), 'mine');
    const ckpt = copyFixture(MODEL, work);
    await assert.rejects(convert({ input: ckpt, output: join(work, 'out') }), (e: unknown) => isEngineError(e, 'convert-failed'));
    assert.equal(readFileSync(join(work, 'out', 'keep.txt'), 'utf8'), 'mine');
    await convert({ input: ckpt, output: join(work, 'out'), overwrite: true });
    assert.equal(existsSync(join(work, 'out', 'keep.txt')), false);
    assert.ok(existsSync(join(work, 'out', 'manifest.json')));
    assert.deepEqual(
      leftovers(work).filter((f) => f !== 'out'),
      [],
    );
  });

  it('unknown preset and bad layer counts are invalid-params', async () => {
    const out = join(root, 'bad-params');
    await assert.rejects(convert({ random: 'paligemma-1b', output: out }), (e: unknown) => isEngineError(e, 'invalid-params'));
    await assert.rejects(convert({ random: 'paligemma-3b-224', layers: 99, output: out }), (e: unknown) => isEngineError(e, 'invalid-params'));
    assert.equal(existsSync(out), false);
  });
});
