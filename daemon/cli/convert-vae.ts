// `paligemma convert-vae <vae-oid.npz> <out.onnx>`: big_vision's mask VAE -> ONNX mask decoder.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { readVaeNpz, vaeDecoderOnnx } from '../engine/segment/vae.js';
import { formatBytes } from '../common/format.js';
import { runCommand, UsageError } from './args.js';
import type { Command } from './main.js';

const usage = `usage: paligemma convert-vae <vae-oid.npz> <out.onnx>

Converts big_vision's PaliGemma mask VAE (gs://big_vision/paligemma/vae-oid.npz) into the ONNX
mask decoder the daemon uses for 'segment'. Put it next to a model's manifest.json as vae.onnx
(or name it in the manifest's files.vae) so that segmentation results carry masks.
`;

export const command: Command = {
  summary: "convert big_vision's vae-oid.npz into the ONNX mask decoder (vae.onnx)",
  run: (argv) =>
    runCommand({ name: 'convert-vae', usage, options: {} }, argv, async (_values, positionals) => {
      if (positionals.length !== 2) throw new UsageError('expected <vae-oid.npz> <out.onnx>', true);
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
      process.stderr.write(`wrote ${out} (${formatBytes(bytes.length)})\n`);
      return 0;
    }),
};
