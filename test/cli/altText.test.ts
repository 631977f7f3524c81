// `paligemma alt-text check|fix` as a real process on a docs folder of its own (Markdown, MDX, HTML;
// PNG, JPEG, WebP, GIF, SVG; a truncated PNG, a missing file, a remote URL), fixing through a
// daemon it starts on a per-test runtime folder with the real tiny model.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { parseImages } from '../../daemon/alttext/references/index.js';
import { cleanupScratch, images, mainJs, runCli, tempDir, tinyModel } from '../server/daemon.js';

let env: NodeJS.ProcessEnv;
let model: string;
let root: string;

function cli(args: string[], cwd = root): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mainJs, 'alt-text', ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const GUIDE = `# Guide

![](img/photo.jpg)
![screenshot](img/shot.webp "The settings page")

| Step | Picture |
|------|---------|
| One  | ![](img/anim.gif) |

![][logo]

![](img/broken.png)
![](img/missing.png)
![](https://example.com/remote.png)
<img src="img/photo.jpg" alt="">
![A red square on white](img/photo.jpg)

\`\`\`md
![](img/in-code.png)
\`\`\`

[logo]: img/logo.svg "Logo"
`;

const PAGE_MDX = `import Note from './note.js'

<img src="img/photo.jpg" alt={""} />

<img src="img/logo.svg" />

{/* <img src="img/commented.png" /> */}
`;

const INDEX_HTML = `<!doctype html>
<p><img src=img/shapes.png width=10></p>
<p><img src="img/photo.jpg" alt=""> <img src="img/shot.webp" alt></p>
<!-- <img src="img/commented.png"> -->
`;

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="20" height="20" fill="#0a0"/></svg>';

before(async () => {
  model = await tinyModel();
  env = { ...process.env, PALIGEMMA_RUNTIME_DIR: await tempDir('pg-alt-'), PALIGEMMA_MODEL: '' };
  root = await tempDir('pg-docs-');
  const docs = join(root, 'docs');
  mkdirSync(join(docs, 'img'), { recursive: true });
  mkdirSync(join(docs, 'build'));
  mkdirSync(join(docs, 'node_modules', 'pkg'), { recursive: true });
  cpSync(images.wide, join(docs, 'img', 'photo.jpg'));
  cpSync(images.shapes, join(docs, 'img', 'shapes.png'));
  // A GIF with a transparent index (flattened onto white by the daemon).
  cpSync(join(images.shapes, '..', '..', '..', 'engine', 'image', 'fixtures', 'transparent.gif'), join(docs, 'img', 'anim.gif'));
  writeFileSync(join(docs, 'img', 'shot.webp'), await sharp(images.gradient).webp().toBuffer());
  writeFileSync(join(docs, 'img', 'logo.svg'), SVG);
  const png = readFileSync(images.shapes);
  writeFileSync(join(docs, 'img', 'broken.png'), png.subarray(0, Math.floor(png.length / 2)));
  writeFileSync(join(docs, 'guide.md'), GUIDE);
  writeFileSync(join(docs, 'page.mdx'), PAGE_MDX);
  writeFileSync(join(docs, 'index.html'), INDEX_HTML);
  writeFileSync(join(docs, '.gitignore'), 'build/\n');
  writeFileSync(join(docs, 'build', 'out.md'), '![](x.png)\n');
  writeFileSync(join(docs, 'node_modules', 'pkg', 'README.md'), '![](x.png)\n');
});

after(async () => {
  await runCli(['stop'], env);
  await cleanupScratch();
});

type Problem = { file: string; line: number; column: number; src: string; kind: string; message: string };

const UNFIXABLE: Problem[] = [
  {
    file: 'docs/guide.md',
    line: 12,
    column: 5,
    src: 'img/broken.png',
    kind: 'unreadable',
    message: 'img/broken.png is damaged or truncated (the PNG ends before its IEND chunk) (no alt text)',
  },
  { file: 'docs/guide.md', line: 13, column: 5, src: 'img/missing.png', kind: 'not-found', message: 'file not found: img/missing.png (no alt text)' },
  { file: 'docs/guide.md', line: 14, column: 5, src: 'https://example.com/remote.png', kind: 'remote', message: 'remote image: not checked (no alt text)' },
];

test('check --format json lists every problem, item by item; decorative images, code, comments and ignored folders are not in it', async () => {
  const r = await cli(['check', 'docs', '--format', 'json']);
  assert.equal(r.code, 1, r.stderr);
  const { problems } = JSON.parse(r.stdout) as { problems: Problem[] };
  assert.deepEqual(problems, [
    { file: 'docs/guide.md', line: 3, column: 1, src: 'img/photo.jpg', kind: 'missing', message: 'Image has no alt text.' },
    { file: 'docs/guide.md', line: 4, column: 3, src: 'img/shot.webp', kind: 'placeholder', message: 'Alt text "screenshot" is a placeholder: describe the image instead.' },
    { file: 'docs/guide.md', line: 8, column: 10, src: 'img/anim.gif', kind: 'missing', message: 'Image has no alt text.' },
    { file: 'docs/guide.md', line: 10, column: 1, src: 'img/logo.svg', kind: 'missing', message: 'Image has no alt text.' },
    ...UNFIXABLE,
    { file: 'docs/index.html', line: 2, column: 4, src: 'img/shapes.png', kind: 'missing', message: 'Image has no alt text.' },
    { file: 'docs/index.html', line: 3, column: 37, src: 'img/shot.webp', kind: 'empty', message: 'Image has empty alt text: describe it, or mark it as decorative.' },
    { file: 'docs/page.mdx', line: 5, column: 1, src: 'img/logo.svg', kind: 'missing', message: 'Image has no alt text.' },
  ]);
});

test('check prints file:line:col  kind  message, SARIF 2.1.0 with the same results, and exits 0 when clean, 2 on usage errors', async () => {
  const text = await cli(['check', 'docs/guide.md', 'docs/*.mdx']);
  assert.equal(text.code, 1);
  const lines = text.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 8);
  assert.equal(lines[0], 'docs/guide.md:3:1  missing  Image has no alt text.');
  assert.equal(lines[7], 'docs/page.mdx:5:1  missing  Image has no alt text.');
  assert.match(text.stderr, /8 problems in 2 of 2 file\(s\)/);
  const quiet = await cli(['check', 'docs/guide.md', 'docs/*.mdx', '--quiet']);
  assert.equal(quiet.stdout, text.stdout);
  assert.equal(quiet.stderr, '', '--quiet: nothing on stderr');

  const sarif = JSON.parse((await cli(['check', 'docs', '--format', 'sarif'])).stdout);
  assert.equal(sarif.version, '2.1.0');
  const [run] = sarif.runs;
  assert.equal(run.tool.driver.name, 'paligemma alt-text');
  assert.deepEqual(
    run.tool.driver.rules.map((r: { id: string }) => r.id),
    ['missing', 'empty', 'placeholder', 'not-found', 'unreadable', 'unsupported', 'remote'],
  );
  assert.equal(run.results.length, 10);
  const broken = run.results.find((r: { ruleId: string }) => r.ruleId === 'unreadable');
  assert.deepEqual(broken.locations[0].physicalLocation, {
    artifactLocation: { uri: 'docs/guide.md', uriBaseId: '%SRCROOT%' },
    region: { startLine: 12, startColumn: 5, endLine: 12, endColumn: 19 },
  });

  writeFileSync(join(root, 'clean.md'), '![A kite](docs/img/photo.jpg)\n<img src="docs/img/photo.jpg" alt="">\n');
  const clean = await cli(['check', 'clean.md']);
  assert.equal(clean.code, 0, clean.stdout);
  assert.equal(clean.stdout, '');
  for (const args of [
    ['check'],
    ['lint', 'docs'],
    ['check', 'nope'],
    ['check', 'docs', '--format', 'xml'],
    ['fix', 'docs', '--format', 'sarif'],
    ['check', 'docs', '--model', 'm'],
    ['check', 'nothing/**/*.md'],
    ['check', 'docs/.gitignore'],
    ['check', 'docs', '--ext', 'txt'],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /usage: paligemma alt-text/);
  }
});

function snapshot(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const visit = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else files.set(relative(root, p), readFileSync(p));
    }
  };
  visit(join(root, 'docs'));
  return files;
}

type FixReport = {
  results: { file: string; line: number; column: number; src: string; status: string; alt?: string; reason?: string }[];
  summary: { fixed: number; skipped: number; failed: number };
  diff?: string;
};

test('fix --dry-run prints the report and a unified diff and writes nothing', async () => {
  const before = snapshot();
  const r = await cli(['fix', 'docs', '--model', model, '--max-tokens', '8', '--dry-run', '--format', 'json']);
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as FixReport;
  assert.deepEqual(report.summary, { fixed: 7, skipped: 3, failed: 0 });
  assert.match(report.diff!, /^--- a\/docs\/guide\.md\n\+\+\+ b\/docs\/guide\.md\n@@ /);
  assert.match(
    report.diff!,
    /^-!\[\]\(img\/photo\.jpg\)\n-!\[screenshot\]\(img\/shot\.webp "The settings page"\)\n\+!\[[^\]]+\]\(img\/photo\.jpg\)\n\+!\[[^\]]+\]\(img\/shot\.webp "The settings page"\)$/m,
  );
  assert.match(report.diff!, /^\+<img src="img\/logo\.svg" alt="[^"]+" \/>$/m, 'the SVG is described');
  assert.deepEqual(snapshot(), before, 'nothing written');
});

test('fix describes each image once, writes only the alt values, and reports what it could not fix', async () => {
  const before = snapshot();
  const r = await cli(['fix', 'docs', '--model', model, '--max-tokens', '8', '--format', 'json']);
  assert.equal(r.code, 1, `problems remain: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as FixReport;
  // Five distinct pictures (photo.jpg, shot.webp, anim.gif, logo.svg, shapes.png) for eight images.
  assert.match(r.stderr, /\[5\/5\] /);
  assert.doesNotMatch(r.stderr, /\[6\//);
  assert.deepEqual(
    report.results.map((x) => [x.file, x.line, x.src, x.status, x.reason]),
    [
      ['docs/guide.md', 3, 'img/photo.jpg', 'fixed', undefined],
      ['docs/guide.md', 4, 'img/shot.webp', 'fixed', undefined],
      ['docs/guide.md', 8, 'img/anim.gif', 'fixed', undefined],
      ['docs/guide.md', 10, 'img/logo.svg', 'fixed', undefined],
      ['docs/guide.md', 12, 'img/broken.png', 'skipped', 'img/broken.png is damaged or truncated (the PNG ends before its IEND chunk)'],
      ['docs/guide.md', 13, 'img/missing.png', 'skipped', 'file not found: img/missing.png'],
      ['docs/guide.md', 14, 'https://example.com/remote.png', 'skipped', 'remote image: not fetched (https://example.com/remote.png)'],
      ['docs/index.html', 2, 'img/shapes.png', 'fixed', undefined],
      ['docs/index.html', 3, 'img/shot.webp', 'fixed', undefined],
      ['docs/page.mdx', 5, 'img/logo.svg', 'fixed', undefined],
    ],
  );
  assert.deepEqual(report.summary, { fixed: 7, skipped: 3, failed: 0 });
  const alts = new Map(report.results.filter((x) => x.alt).map((x) => [x.src, x.alt]));
  for (const x of report.results.filter((y) => y.status === 'fixed')) {
    assert.ok(x.alt && x.alt.trim(), `${x.src} got alt text`);
    assert.equal(x.alt, alts.get(x.src), 'the same picture gets the same text everywhere');
  }

  const afterFix = snapshot();
  for (const [path, bytes] of before) {
    if (!/\.(md|mdx|html)$/.test(path)) assert.ok(afterFix.get(path)!.equals(bytes), `${path} untouched`);
  }
  for (const [path, lang] of [
    ['docs/guide.md', 'markdown'],
    ['docs/page.mdx', 'mdx'],
    ['docs/index.html', 'html'],
  ] as const) {
    const old = before.get(path)!.toString();
    const now = afterFix.get(path)!.toString();
    const paths = (t: string) => parseImages(t, lang).references.map((x) => t.slice(x.srcSpan.start, x.srcSpan.end));
    assert.deepEqual(paths(now), paths(old), `${path}: image paths byte-identical`);
    // Line by line, only lines with a fixed image changed, and each still starts and ends the same way.
    const [a, b] = [old.split('\n'), now.split('\n')];
    assert.equal(b.length, a.length, path);
    for (let i = 0; i < a.length; i++) {
      const fixedHere = report.results.some((x) => x.file === path && x.line === i + 1 && x.status === 'fixed');
      if (!fixedHere) assert.equal(b[i], a[i], `${path}:${i + 1} unchanged`);
    }
  }
  const guide = afterFix.get('docs/guide.md')!.toString();
  assert.ok(guide.includes('<img src="img/photo.jpg" alt="">'), 'the decorative image is untouched');
  assert.ok(guide.includes('```md\n![](img/in-code.png)\n```'), 'code is untouched');
  assert.ok(guide.includes('[logo]: img/logo.svg "Logo"'), 'the reference definition is untouched');
  assert.match(guide, /^\| One {2}\| !\[[^\]]+\]\(img\/anim\.gif\) \|$/m, 'the table row keeps its pipes');
  assert.match(guide, /^!\[[^\]]+\]\(img\/shot\.webp "The settings page"\)$/m, 'the title is kept');
  assert.ok(afterFix.get('docs/page.mdx')!.toString().includes('<img src="img/photo.jpg" alt={""} />'));
  assert.match(afterFix.get('docs/index.html')!.toString(), /^<p><img src=img\/shapes\.png width=10 alt="[^"]+"><\/p>$/m);

  const again = await cli(['check', 'docs', '--format', 'json']);
  assert.equal(again.code, 1);
  assert.deepEqual((JSON.parse(again.stdout) as { problems: Problem[] }).problems, UNFIXABLE, 'only the images that could not be described');

  const mtimes = [...afterFix.keys()].map((p) => statSync(join(root, p)).mtimeMs);
  const second = await cli(['fix', 'docs', '--model', model, '--max-tokens', '8', '--format', 'json']);
  assert.equal(second.code, 1);
  const secondReport = JSON.parse(second.stdout) as FixReport;
  assert.deepEqual(secondReport.summary, { fixed: 0, skipped: 3, failed: 0 });
  assert.doesNotMatch(second.stderr, /\[1\//, 'no image to describe');
  const quietFix = await cli(['fix', 'docs', '--quiet']);
  assert.equal(quietFix.code, 1);
  assert.equal(quietFix.stderr, '');
  assert.match(quietFix.stdout, /^docs\/guide\.md:13:5  skipped  file not found: img\/missing\.png$/m);
  assert.match(quietFix.stdout, /\n0 fixed, 3 skipped, 0 failed\n$/);
  assert.deepEqual(snapshot(), afterFix, 'the second fix changes nothing');
  assert.deepEqual(
    [...afterFix.keys()].map((p) => statSync(join(root, p)).mtimeMs),
    mtimes,
    'and writes nothing',
  );
});

test('fix on a folder with nothing left to fix exits 0 without the daemon; text output counts all three', async () => {
  const dir = join(root, 'done');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.md'), '![A kite](../docs/img/photo.jpg)\n');
  const r = await cli(['fix', 'done']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '0 fixed, 0 skipped, 0 failed\n');
  assert.doesNotMatch(r.stderr, /starting/);
});
