// The transformers.js side of `paligemma bench --peer transformers.js`, in a process of its own:
// onnxruntime-node 1.30 (transformers.js's) and our pinned 1.29 cannot share one process (both
// are libonnxruntime.so.1; the second binding fails with "version `VERS_1.30.0' not found").
//   node bench/peer/transformers-js.mjs bench '{"dir", "dtype", "newTokens", "runs", "threads"}'
//     load, one cold request, then `runs` warm requests on fresh images; prints one JSON line.
//   node bench/peer/transformers-js.mjs ids '{"dir", "dtype", "newTokens", "cases": [{"image", "prompt"}]}'
//     greedy ids per case (prompt ids and generated ids); prints one JSON line.
// Each request generates exactly newTokens tokens (min_new_tokens = max_new_tokens), as ours do.
import { AutoProcessor, BaseStreamer, env, PaliGemmaForConditionalGeneration, RawImage } from '@huggingface/transformers';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, testImage } from '../../out/daemon/cli/benchCommon.js';

const [mode, json] = process.argv.slice(2);
const args = JSON.parse(json ?? '{}');
const dir = resolve(args.dir);
env.allowRemoteModels = false;
env.localModelPath = `${dirname(dir)}/`;

/** The onnxruntime-node transformers.js resolves (its own nested copy, else a hoisted one). */
function peerOrtVersion() {
  let at = dirname(fileURLToPath(import.meta.resolve('@huggingface/transformers')));
  for (; at !== dirname(at); at = dirname(at)) {
    const pkg = join(at, 'node_modules', 'onnxruntime-node', 'package.json');
    if (existsSync(pkg)) return JSON.parse(readFileSync(pkg, 'utf8')).version;
  }
  return null;
}

const round = (x) => Math.round(x * 100) / 100;

const t0 = performance.now();
const processor = await AutoProcessor.from_pretrained(basename(dir));
const sessionOptions = args.threads ? { intraOpNumThreads: args.threads } : {};
const model = await PaliGemmaForConditionalGeneration.from_pretrained(basename(dir), { dtype: args.dtype, device: 'cpu', session_options: sessionOptions });
const loadMs = performance.now() - t0;
const n = args.newTokens ?? 32;

/** Times one request: preprocessing and tokenizing included, as in ours. */
async function request(image, prompt = 'caption en') {
  let first = 0;
  let puts = 0;
  const streamer = new (class extends BaseStreamer {
    put() {
      // The first put is the prompt, the second the first generated token.
      if (++puts === 2) first = performance.now();
    }
    end() {}
  })();
  const start = performance.now();
  const inputs = await processor(image, `<image>${prompt}`);
  const out = await model.generate({ ...inputs, max_new_tokens: n, min_new_tokens: n, do_sample: false, streamer });
  const end = performance.now();
  const promptIds = Array.from(inputs.input_ids.data, Number);
  return { ms: end - start, firstMs: first - start, promptIds, generatedIds: Array.from(out.data, Number).slice(promptIds.length) };
}

const rawImage = (seed) => {
  const { width, height, rgb } = testImage(seed);
  return new RawImage(rgb, width, height, 3);
};

if (mode === 'ids') {
  const cases = [];
  for (const c of args.cases) {
    const r = await request(await RawImage.read(c.image), c.prompt);
    cases.push({ input_ids: r.promptIds, generated_ids: r.generatedIds });
  }
  process.stdout.write(`${JSON.stringify({ cases })}\n`);
} else if (mode === 'bench') {
  await request(rawImage(0));
  const coldMs = performance.now(); // since this process started: startup, imports, load, one request
  const runs = [];
  for (let r = 1; r <= (args.runs ?? 3); r++) runs.push(await request(rawImage(r)));
  const pick = (f) => round(median(runs.map(f)));
  process.stdout.write(
    `${JSON.stringify({
      runtime: 'transformers.js',
      onnxruntime: peerOrtVersion(),
      load_ms: Math.round(loadMs),
      cold_ms: Math.round(coldMs),
      first_token_ms: pick((r) => r.firstMs),
      ms_per_token: pick((r) => (n > 1 ? (r.ms - r.firstMs) / (n - 1) : 0)),
      request_ms: pick((r) => r.ms),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    })}\n`,
  );
} else {
  process.stderr.write(`usage: transformers-js.mjs bench|ids '<json>'\n`);
  process.exit(2);
}
await model.dispose();
