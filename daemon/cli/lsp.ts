// `paligemma lsp --stdio [--model <dir>]`: the language server (daemon/lsp/) on stdin/stdout, for
// any editor. Model runs go to the shared daemon, started on the first one that needs it.
import { resolve } from 'node:path';
import { createConnection } from 'vscode-languageserver/node';
import { startServer } from '../lsp/server.js';
import { runCommand, UsageError } from './args.js';
import type { Command } from './main.js';

const USAGE = `usage: paligemma lsp --stdio [--model <dir>]

Speaks the Language Server Protocol on stdin/stdout. Configure your editor to start it; see the README.
`;

// --clientProcessId is what vscode-languageclient adds; the connection reads it itself.
const options = { stdio: { type: 'boolean' }, model: { type: 'string' }, clientProcessId: { type: 'string' } } as const;

export const command: Command = {
  summary: 'language server (alt-text diagnostics, fixes, image hovers) on stdio',
  run: (argv) =>
    runCommand({ name: 'lsp', usage: USAGE, options, usageOnEveryError: true }, argv, async (values) => {
      if (!values.stdio) throw new UsageError('only --stdio is supported (an editor starts this command and talks to it on stdin/stdout)');
      // Given the streams themselves, the connection also ends the process when stdin closes.
      const connection = createConnection(process.stdin, process.stdout);
      // Anything written to stdout that is not a message breaks the protocol: logs go to stderr.
      console.log = console.info = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
      startServer(connection, { modelPath: values.model ? resolve(values.model) : undefined });
      // The connection ends the process on `exit` (or when the editor's process goes away).
      await new Promise<never>(() => undefined);
      return 0;
    }),
};
