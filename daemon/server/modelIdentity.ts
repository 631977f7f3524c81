// A model folder's identity without opening sessions: the id keys cached results (it changes when
// the weights would), the name is shown to people. Converted folders are named and hashed by their
// manifest.json; onnx-community / transformers.js folders have no manifest, so they are hashed by
// config.json plus the name and size of every file under onnx/ (hashing gigabytes of weights on
// each lookup would be too slow; a re-export changes sizes, or config.json) and named as the engine
// names them (config's `_name_or_path`, else the folder, and the variant), so that cached and fresh
// results carry the same model name.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../engine/errors.js';
import { chooseVariant, transformersJsModelName, transformersJsVariants } from '../engine/transformers-js/folder.js';
import { sha256 } from './imageSource.js';

export interface ModelIdentity {
  id: string;
  name: string;
}

export async function identifyModelFolder(path: string): Promise<ModelIdentity> {
  let manifest: Buffer;
  try {
    manifest = await readFile(join(path, 'manifest.json'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const variants = code === 'ENOENT' || code === 'ENOTDIR' ? transformersJsVariants(path) : null;
    if (variants) return identifyOnnxCommunity(path, variants);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new EngineError(
        'model-missing',
        `no model at ${path}: neither manifest.json (convert one with \`paligemma convert\`) nor an onnx-community export (config.json and onnx/{vision_encoder,embed_tokens,decoder_model_merged}*.onnx; get one with \`paligemma download\`)`,
      );
    }
    throw new EngineError('model-invalid', `cannot read ${join(path, 'manifest.json')}: ${(e as Error).message}`);
  }
  let name: unknown;
  try {
    name = (JSON.parse(manifest.toString('utf8')) as { name?: unknown }).name;
  } catch (e) {
    throw new EngineError('model-invalid', `${join(path, 'manifest.json')} is not valid JSON: ${(e as Error).message}`);
  }
  return { id: sha256(manifest).slice(0, 32), name: typeof name === 'string' ? name : path };
}

async function identifyOnnxCommunity(path: string, variants: string[]): Promise<ModelIdentity> {
  const hash = createHash('sha256').update('onnx-community\0');
  let config: Record<string, unknown>;
  try {
    const configBytes = await readFile(join(path, 'config.json'));
    hash.update(configBytes);
    config = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
    const onnxDir = join(path, 'onnx');
    for (const name of (await readdir(onnxDir)).sort()) {
      const s = await stat(join(onnxDir, name));
      if (s.isFile()) hash.update(`\0${name}\0${s.size}`);
    }
  } catch (e) {
    throw new EngineError('model-invalid', `cannot read the onnx-community export at ${path}: ${(e as Error).message}`);
  }
  if (typeof config !== 'object' || config === null) throw new EngineError('model-invalid', `${join(path, 'config.json')} is not a JSON object`);
  return { id: hash.digest('hex').slice(0, 32), name: transformersJsModelName(path, config, chooseVariant(path, variants)) };
}
