// `npm run demo`: converts the bundled tiny checkpoint into models/ (once), starts a daemon on a
// private socket (so a real shared daemon is left alone), runs caption, OCR, detection and a
// question on the sample images through it, prints the results and stops the daemon.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../common/errors.js';
import { formatBytes } from '../common/format.js';
import * as protocol from '../protocol.js';
import { daemonEndpoint } from '../client/endpoint.js';
import { connectDaemon } from '../client/daemon.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = join(root, 'test', 'fixtures', 'tiny-paligemma-224');
const modelDir = join(root, 'models', 'tiny-paligemma-224');
const images = ['shapes.png', 'gradient.png', 'wide.jpg'].map((f) => join(fixture, f));

async function main(): Promise<number> {
  const out = (s = '') => process.stdout.write(`${s}\n`);
  if (!existsSync(join(modelDir, 'manifest.json'))) {
    out(`converting ${fixture} -> ${modelDir}`);
    await mkdir(join(root, 'models'), { recursive: true });
    const { convert } = await import('../engine/convert/index.js');
    await convert({ input: fixture, output: modelDir });
  }
  const env = { ...process.env, PALIGEMMA_RUNTIME_DIR: join(tmpdir(), `paligemma-demo-${process.getuid?.() ?? 0}`) };
  const endpoint = daemonEndpoint(env);
  const client = await connectDaemon({
    endpoint,
    env,
    serveArgs: ['--model', modelDir, '--idle-exit-ms', '60000'],
    onStarting: () => out(`starting a daemon on ${endpoint.socketPath} (log: ${endpoint.logPath})`),
  });
  const rpc = client.connection;
  try {
    await rpc.sendRequest(protocol.LoadModel.type, { path: modelDir, executionProvider: 'cpu' });
    out();
    out('NOTE: this tiny model has random weights, so its answers are gibberish (mixed words,');
    out('<locNNNN> boxes, <segNNN> codes). The point is the plumbing: image -> daemon -> model -> result.');
    for (const path of images) {
      const image = { path };
      out();
      out(`== ${path}`);
      const c = await rpc.sendRequest(protocol.Caption.type, { image, language: 'en' });
      out(`caption  (${c.ms} ms${c.cached ? ', cached' : ''}): ${JSON.stringify(c.text)}`);
      const o = await rpc.sendRequest(protocol.Ocr.type, { image });
      out(`ocr      (${o.ms} ms${o.cached ? ', cached' : ''}): ${JSON.stringify(o.text)}`);
      const d = await rpc.sendRequest(protocol.Detect.type, { image, objects: ['red square', 'circle'] });
      const boxes = d.objects.map((x) => `${x.label || '(no label)'} [${[x.box.x0, x.box.y0, x.box.x1, x.box.y1].map(Math.round).join(', ')}]`);
      out(`detect   (${d.ms} ms${d.cached ? ', cached' : ''}): ${boxes.length ? boxes.join('; ') : '(nothing found)'}`);
      const a = await rpc.sendRequest(protocol.Answer.type, { image, question: 'what color is the circle?', language: 'en' });
      out(`ask      (${a.ms} ms${a.cached ? ', cached' : ''}): ${JSON.stringify(a.text)}`);
    }
    const s = await rpc.sendRequest(protocol.Status.type);
    out();
    out(`model ${s.model.name} on ${s.model.executionProvider}; daemon pid ${s.pid}, rss ${formatBytes(s.memory.rssBytes)}; cache ${s.cache.entries} results`);
    await rpc.sendRequest(protocol.Stop.type);
  } finally {
    client.close();
  }
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${errorMessage(e)}\n`);
    process.exitCode = 1;
  },
);
