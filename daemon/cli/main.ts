#!/usr/bin/env node
// `paligemma <command> ...`: each command lives in its own module, loaded only when used so that
// `paligemma caption` never pays for the converter's imports and vice versa.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../common/errors.js';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<{ command: Command }>> = {
  convert: () => import('./convert.js'),
  generate: () => import('./generate.js'),
  serve: () => import('./serve.js'),
  worker: () => import('./worker.js'),
  caption: () => import('./tasks.js').then((m) => ({ command: m.caption })),
  ocr: () => import('./tasks.js').then((m) => ({ command: m.ocr })),
  detect: () => import('./tasks.js').then((m) => ({ command: m.detect })),
  segment: () => import('./tasks.js').then((m) => ({ command: m.segment })),
  ask: () => import('./tasks.js').then((m) => ({ command: m.ask })),
  status: () => import('./tasks.js').then((m) => ({ command: m.status })),
  stop: () => import('./tasks.js').then((m) => ({ command: m.stop })),
  bench: () => import('./bench.js'),
  download: () => import('./download.js'),
  'convert-vae': () => import('./convert-vae.js'),
  'alt-text': () => import('./altText.js'),
  lsp: () => import('./lsp.js'),
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = await Promise.all(
      Object.keys(commands).map(async (n) => {
        const summary = await commands[n]().then(
          (m) => m.command.summary,
          () => '(unavailable)',
        );
        return `  ${n.padEnd(12)} ${summary}`;
      }),
    );
    process.stdout.write(`usage: paligemma <command> [options]\n\ncommands:\n${lines.join('\n')}\n`);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`paligemma: unknown command '${name}' (try 'paligemma --help')\n`);
    return 2;
  }
  const { command } = await load();
  return command.run(rest);
}

function isEntryPoint(): boolean {
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`paligemma: ${errorMessage(err)}\n`);
      process.exitCode = 1;
    },
  );
}
