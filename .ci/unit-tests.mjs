// `npm test` after the build: node:test on every compiled `*.test.js` under out/test (or under the
// folders and files given, e.g. `node .ci/unit-tests.mjs out/test/server`). Listing the files
// ourselves matters: given a folder, node runs every .js file below a folder named `test`, so the
// helper modules (fixtures, spawned daemons) would run as test files too.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['out/test']).flatMap((root) =>
  statSync(root).isDirectory()
    ? readdirSync(root, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.test.js'))
        .map((f) => join(root, f))
    : [root],
);
files.sort();
if (files.length === 0) {
  console.error(`no *.test.js files under ${roots.join(', ') || 'out/test'}: run \`npm run build\` first`);
  process.exit(2);
}
const args = [
  // Names what keeps a finished test file's process alive, instead of a silent wait for the timeout.
  '--import=./.ci/test-exit-watch.mjs',
  '--test',
  '--test-concurrency=1',
  '--test-timeout=300000',
  '--test-reporter=./.ci/test-reporter.mjs',
  ...files,
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
