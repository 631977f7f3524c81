// `paligemma convert-vae <vae-oid.npz> <out.onnx>`: big_vision's mask VAE -> ONNX mask decoder.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readVaeNpz, vaeDecoderOnnx } from '../engine/segment/vae.js';
import type { Command } from './main.js';

const usage = `usage: paligemma convert-vae <vae-oid.npz> <out.onnx>

Converts big_vision's PaliGemma mask VAE (gs://big_vision/paligemma/vae-oid.npz) into the ONNX
mask decoder the daemon uses for 'segment'. Put it next to a model's manifest.json as vae.onnx
(or name it in the manifest's files.vae) so that segmentation results carry masks.
`;

export const command: Command = {
  summary: 'convert big_vision\'s vae-oid.npz into the ONNX mask decoder (vae.onnx)',
  async run(argv) {
    const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    if (positionals.length !== 2) {
      process.stderr.write(usage);
      return 2;
    }
    const [npz, out] = positionals;
    const bytes = vaeDecoderOnnx(readVaeNpz(npz));
    // Written beside the target and renamed, so a failed run never leaves a truncated vae.onnx.
    const tmp = `${out}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, bytes);
      renameSync(tmp, out);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    process.stderr.write(`wrote ${out} (${(bytes.length / 1e6).toFixed(1)} MB)\n`);
    return 0;
  },
};
