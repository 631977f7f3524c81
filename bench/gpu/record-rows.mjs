#!/usr/bin/env node
// One step of bench/gpu/compare.sh into JSONL rows: the JSON objects the command printed, each with
// the command line that made it, and a row with an `error` field when the command failed or printed
// nothing (so the table lists the configuration as failed instead of dropping it).
//
//   node bench/gpu/record-rows.mjs --stdout <file> --stderr <file> --rc <exit status> --command <text>
//        --side hf|ours --preset <preset> [--config '<json: the configuration asked for>'] [--timeout <s>]
//        [--error <why it did not run>]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseJsonl } from '../compare-table.mjs';

const { values } = parseArgs({
  options: {
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    rc: { type: 'string', default: '0' },
    command: { type: 'string', default: '' },
    side: { type: 'string', default: 'ours' },
    preset: { type: 'string' },
    config: { type: 'string', default: '{}' },
    timeout: { type: 'string' },
    error: { type: 'string' },
  },
});
const read = (f) => {
  try {
    return f ? readFileSync(f, 'utf8') : '';
  } catch {
    return '';
  }
};
const rows = parseJsonl(read(values.stdout));
for (const row of rows) process.stdout.write(`${JSON.stringify({ ...row, command: values.command })}\n`);

const rc = Number(values.rc);
if (values.error !== undefined || rc !== 0 || rows.length === 0) {
  const why = values.error ?? (rc === 124 || rc === 137 ? `timed out after ${values.timeout ?? '?'} s` : rc === 0 ? 'printed no result' : `exit ${rc}`);
  // The end of stderr says what went wrong; progress lines ("[ 40%] ...") say nothing.
  const tail = read(values.stderr)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^\[\s*\d+%\]/.test(l))
    .slice(-3)
    .join(' / ');
  const error = `${why}${tail ? `: ${tail}` : ''}${rows.length ? ` (after ${rows.length} rows)` : ''}`;
  process.stdout.write(`${JSON.stringify({ side: values.side, preset: values.preset, ...JSON.parse(values.config), command: values.command, error })}\n`);
}
