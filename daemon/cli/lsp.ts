// `paligemma lsp --stdio [--model <dir>]`: the language server (daemon/lsp/) on stdin/stdout, for
// any editor. Model runs go to the shared daemon, started on the first one that needs it.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createConnection } from 'vscode-languageserver/node';
import { startServer } from '../lsp/server.js';
import type { Command } from './main.js';

const USAGE = 'usage: paligemma lsp --stdio [--model <dir>]';

export const command: Command = {
  summary: 'language server (alt-text diagnostics, fixes, image hovers) on stdio',
  async run(argv) {
    let values: { stdio?: boolean; model?: string; help?: boolean };
    try {
      // --clientProcessId is what vscode-languageclient adds; the connection reads it itself.
      ({ values } = parseArgs({
        args: argv,
        options: { stdio: { type: 'boolean' }, model: { type: 'string' }, help: { type: 'boolean', short: 'h' }, clientProcessId: { type: 'string' } },
        strict: true,
      }));
    } catch (err) {
      process.stderr.write(`paligemma lsp: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
      return 2;
    }
    if (values.help) {
      process.stdout.write(`${USAGE}\n\nSpeaks the Language Server Protocol on stdin/stdout. Configure your editor to start it; see the README.\n`);
      return 0;
    }
    if (!values.stdio) {
      process.stderr.write(`paligemma lsp: only --stdio is supported (an editor starts this command and talks to it on stdin/stdout)\n${USAGE}\n`);
      return 2;
    }
    // Given the streams themselves, the connection also ends the process when stdin closes.
    const connection = createConnection(process.stdin, process.stdout);
    // Anything written to stdout that is not a message breaks the protocol: logs go to stderr.
    console.log = console.info = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
    startServer(connection, { modelPath: values.model ? resolve(values.model) : undefined });
    // The connection ends the process on `exit` (or when the editor's process goes away).
    await new Promise<never>(() => undefined);
    return 0;
  },
};
