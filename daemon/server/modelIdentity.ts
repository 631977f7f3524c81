// A model folder's identity without opening sessions: the id keys cached results (it changes when
// the weights would), the name is shown to people. Converted folders are named by their
// manifest.json and hashed by it and by the content of every file it records a checksum for: a file
// with the recorded size and modification time is taken at its recorded hash, any other is hashed
// (once per size and time), so a copy of the folder with other weights never shares cached answers.
// Older conversions, without checksums, are hashed by the names, sizes and times of their files.
// onnx-community / transformers.js folders have no manifest, so they are hashed by
// config.json plus the name and size of every file under onnx/ (hashing gigabytes of weights on
// each lookup would be too slow; a re-export changes sizes, or config.json) and named as the engine
// names them (config's `_name_or_path`, else the folder, and the variant), so that cached and fresh
// results carry the same model name.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../engine/errors.js';
import { chooseVariant, transformersJsModelName, transformersJsVariants } from '../engine/transformers-js/folder.js';

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
  let parsed: { name?: unknown; checksums?: unknown };
  try {
    parsed = JSON.parse(manifest.toString('utf8')) as typeof parsed;
  } catch (e) {
    throw new EngineError('model-invalid', `${join(path, 'manifest.json')} is not valid JSON: ${(e as Error).message}`);
  }
  const hash = createHash('sha256').update(manifest);
  for (const part of await contentParts(path, parsed.checksums)) hash.update(`\0${part}`);
  return { id: hash.digest('hex').slice(0, 32), name: typeof parsed.name === 'string' ? parsed.name : path };
}

interface RecordedChecksum {
  bytes?: unknown;
  mtimeMs?: unknown;
  sha256?: unknown;
}

/** One string per weight file: its name and its content hash (or, without checksums, its size and time). */
async function contentParts(dir: string, checksums: unknown): Promise<string[]> {
  if (checksums === null || typeof checksums !== 'object') {
    const parts: string[] = [];
    for (const name of (await readdir(dir)).sort()) {
      if (name === 'manifest.json') continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile()) parts.push(`${name}\0${st.size}\0${st.mtimeMs}`);
    }
    return parts;
  }
  const parts: string[] = [];
  for (const [name, recorded] of Object.entries(checksums as Record<string, RecordedChecksum>).sort(([a], [b]) => a.localeCompare(b))) {
    parts.push(`${name}\0${await fileHash(join(dir, name), recorded)}`);
  }
  return parts;
}

/** Hashes already computed, by file identity (path, inode, size, time): later lookups cost a stat. */
const computed = new Map<string, string>();

async function fileHash(path: string, recorded: RecordedChecksum): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  // A missing file fails at load with its name; here it only has to differ from a present one.
  if (!st?.isFile()) return 'missing';
  // Within a millisecond: copies that keep times (cp -p) set them through a float in ms.
  const sameTime = typeof recorded.mtimeMs === 'number' && Math.abs(st.mtimeMs - recorded.mtimeMs) < 1;
  if (st.size === recorded.bytes && sameTime && typeof recorded.sha256 === 'string') return recorded.sha256;
  const key = `${path}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
  let sha = computed.get(key);
  if (!sha) {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
    sha = `sha256:${h.digest('hex')}`;
    if (computed.size > 1024) computed.clear();
    computed.set(key, sha);
  }
  return sha;
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
