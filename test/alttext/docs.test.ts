// The docs core on its own: verdicts per reference kind, the placeholder list, MDX by extension,
// image file checks (found, readable, an image, whole), and atomic writes.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkDocument, checkReferenceFile } from '../../daemon/alttext/check.js';
import { findAltTextProblems } from '../../daemon/alttext/diagnose.js';
import { checkImageFile, nodeFileAccess, sniffImageFormat, type ImageFileAccess } from '../../daemon/alttext/imageFiles.js';
import { judgeAlt, placeholderReason } from '../../daemon/alttext/placeholder.js';
import { parseImages } from '../../daemon/alttext/references/index.js';
import { writeFileAtomically } from '../../daemon/alttext/writeFile.js';

/** [kind or 'fine', the text the problem points at] for each image with alt text. */
function verdicts(text: string, languageId: string, path?: string): string[] {
  const refs = parseImages(text, languageId, path).references.filter((r) => r.alt);
  return refs.map((r) => judgeAlt(r.alt!, r.src).verdict);
}

describe('verdicts per reference kind', () => {
  it('Markdown: ![](x) and ![ ](x) are missing (there is no decorative Markdown image), a description is fine', () => {
    assert.deepEqual(verdicts('![](a.png) ![ ](b.png) ![A red kite](c.png)\n', 'markdown'), ['missing', 'missing', 'fine']);
  });

  it('reference-style images are judged by their label, in all three forms', () => {
    const text = '![][logo] ![Acme rocket][logo] ![logo][] ![logo]\n\n[logo]: img/logo.png\n';
    assert.deepEqual(verdicts(text, 'markdown'), ['missing', 'fine', 'placeholder', 'placeholder']);
  });

  it('images in table cells are found and judged', () => {
    const text = '| a | b |\n|---|---|\n| ![](x.png) | ![Chart of sales by month](y.png) |\n';
    const { problems } = findAltTextProblems(text, 'markdown');
    assert.deepEqual(
      problems.map((p) => [p.kind, p.image.src]),
      [['missing', 'x.png']],
    );
  });

  it('HTML and HTML in Markdown: alt="" is decorative, a valueless alt is empty, no alt is missing', () => {
    const html = '<img src="a.png" alt=""><img src="b.png" alt><img src="c.png"><img src="d.png" alt="  ">';
    assert.deepEqual(verdicts(html, 'html'), ['decorative', 'empty', 'missing', 'empty']);
    assert.deepEqual(verdicts(`Text\n\n${html}\n`, 'markdown'), ['decorative', 'empty', 'missing', 'empty']);
  });

  it('role="presentation"/"none" and aria-hidden="true" are decorative whatever the alt says; aria-hidden="false" is not', () => {
    const html =
      '<img src="a.png" role="presentation"><img src="b.png" role="none" alt="image"><img src="c.png" aria-hidden="true">' +
      '<img src="d.png" aria-hidden="false"><img src="e.png" aria-hidden="">';
    assert.deepEqual(verdicts(html, 'html'), ['decorative', 'decorative', 'decorative', 'missing', 'missing']);
  });

  it('unquoted HTML attributes are read', () => {
    assert.deepEqual(verdicts('<img src=a.png alt=image><img src=b.png alt=A&#32;kite>', 'html'), ['placeholder', 'fine']);
  });

  it('JSX: alt="" and alt={""} are decorative; JSX expression strings are read; computed alt is not judged', () => {
    const jsx =
      'const a = <><img src="a.png" alt="" /><img src="b.png" alt={""} /><img src="c.png" alt={"screenshot"} /><img src="d.png" alt={`A dog`} /><img src="e.png" alt={t("x")} /><img src="f.png" alt /></>;';
    assert.deepEqual(verdicts(jsx, 'typescriptreact'), ['decorative', 'decorative', 'placeholder', 'fine', 'dynamic', 'empty']);
    assert.deepEqual(verdicts(jsx.replace('const a = ', ''), 'javascriptreact'), ['decorative', 'decorative', 'placeholder', 'fine', 'dynamic', 'empty']);
  });

  it('MDX: JSX images follow the JSX rules, Markdown images the Markdown ones', () => {
    const mdx = '# T\n\n![](a.png)\n\n<img src="b.png" alt="" />\n\n<img src="c.png" alt={""} />\n\n<Image src="d.png" />\n';
    assert.deepEqual(verdicts(mdx, 'mdx'), ['missing', 'decorative', 'decorative', 'missing']);
  });

  it('MDX is chosen by the file extension when the language id says plain text', () => {
    const mdx = 'import X from "./x.js"\n\n<img src="b.png" alt={""} />\n![](a.png)\n';
    assert.deepEqual(findAltTextProblems(mdx, 'plaintext').problems, [], 'plain text alone is not parsed');
    const { problems, error } = findAltTextProblems(mdx, 'plaintext', { path: '/docs/intro.mdx' });
    assert.equal(error, undefined);
    assert.deepEqual(
      problems.map((p) => [p.kind, p.image.src]),
      [['missing', 'a.png']],
    );
    assert.deepEqual(
      parseImages('<img src="a.png">', undefined, 'C:/site/Index.HTM').references.map((r) => r.src),
      ['a.png'],
    );
  });

  it('code blocks, inline code and comments are ignored', () => {
    const md = '```md\n![](a.png)\n```\n\n    ![](b.png)\n\n`![](c.png)` <!-- ![](d.png) <img src="e.png"> -->\n';
    assert.deepEqual(findAltTextProblems(md, 'markdown').problems, []);
    assert.deepEqual(findAltTextProblems('<!-- <img src="a.png"> --><pre>&lt;img src="b.png"&gt;</pre>', 'html').problems, []);
    assert.deepEqual(findAltTextProblems('// <img src="a.png" />\n/* <img src="b.png" /> */\nconst s = "<img src=\'c.png\'>";\n', 'javascriptreact').problems, []);
    assert.deepEqual(findAltTextProblems('{/* <img src="a.png" /> */}\n\n```jsx\n<img src="b.png" />\n```\n', 'mdx').problems, []);
  });
});

describe('placeholders', () => {
  it('flags the generic words alone or in pairs, in any case', () => {
    const words = [
      'demo',
      'sample',
      'example',
      'preview',
      'screenshot',
      'screen shot',
      'image',
      'picture',
      'photo',
      'gif',
      'video',
      'figure',
      'diagram',
      'logo',
      'icon',
      'untitled',
    ];
    for (const w of words) {
      assert.ok(placeholderReason(w, 'a.png'), w);
      assert.ok(placeholderReason(w.toUpperCase(), 'a.png'), w.toUpperCase());
    }
    for (const alt of ['sample screenshot', 'Demo Video', 'example image', 'Screen Shot preview', 'The logo.'])
      assert.match(placeholderReason(alt, 'a.png') ?? '', /placeholder/, alt);
    for (const alt of ['Acme logo', 'Demo of the settings page', 'Login screen with two fields', 'TCP/IP layers as a stack'])
      assert.equal(placeholderReason(alt, 'a.png'), undefined, alt);
  });

  it('flags the file name, a path or a URL', () => {
    assert.match(placeholderReason('kite.png', 'img/kite.png') ?? '', /file name/);
    assert.match(placeholderReason('img/kite.png', 'img/kite.png') ?? '', /file name|path/);
    assert.match(placeholderReason('./assets/hero', 'x.png') ?? '', /path/);
    assert.match(placeholderReason('https://example.com/a.png', 'x.png') ?? '', /URL/);
  });

  it('takes more placeholder texts from the options', () => {
    assert.equal(placeholderReason('Product shot', 'a.png'), undefined);
    assert.match(placeholderReason('product shot!', 'a.png', { placeholders: ['Product Shot'] }) ?? '', /placeholder/);
    const { problems } = findAltTextProblems('![Product shot](a.png)', 'markdown', { placeholders: ['product shot'] });
    assert.deepEqual(
      problems.map((p) => p.kind),
      ['placeholder'],
    );
  });
});

const PNG_END = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, ...PNG_END]);
const bytes = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));

describe('image files', () => {
  it('recognises formats by content, not by name', () => {
    assert.equal(sniffImageFormat(PNG), 'png');
    assert.equal(sniffImageFormat(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0])), 'jpeg');
    assert.equal(sniffImageFormat(bytes('GIF89a....')), 'gif');
    assert.equal(sniffImageFormat(bytes('RIFF\x10\0\0\0WEBPVP8 ')), 'webp');
    assert.equal(sniffImageFormat(bytes('<?xml version="1.0"?>\n<!-- c -->\n<svg xmlns="http://www.w3.org/2000/svg"/>')), 'svg');
    assert.equal(sniffImageFormat(bytes('<html><svg></svg></html>')), undefined);
    assert.equal(sniffImageFormat(bytes('BM....')), undefined);
  });

  const files: ImageFileAccess = {
    async stat(path) {
      if (path === '/d/secret.png') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      if (path === '/d/folder.png') return { type: 'directory', size: 0 };
      const data = contents[path];
      return data ? { type: 'file', size: data.length } : undefined;
    },
    async readFile(path) {
      return contents[path];
    },
  };
  const contents: Record<string, Uint8Array> = {
    '/d/ok.png': PNG,
    '/d/cut.png': PNG.subarray(0, 14),
    '/d/cut.jpg': Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]),
    '/d/cut.webp': bytes('RIFF\xff\0\0\0WEBPVP8 '),
    '/d/notes.png': bytes('just some notes'),
    '/d/old.bmp': bytes('BM\0\0\0\0'),
    '/d/empty.png': new Uint8Array(0),
  };

  it('says what is wrong with each file, by the name the document uses', async () => {
    const cases: [string, string, RegExp][] = [
      ['/d/nope.png', 'not-found', /^file not found: x$/],
      ['/d/secret.png', 'unreadable', /^cannot read x: permission denied$/],
      ['/d/folder.png', 'unreadable', /^x is a folder/],
      ['/d/empty.png', 'unreadable', /^x is empty/],
      ['/d/cut.png', 'unreadable', /^x is damaged or truncated \(the PNG ends before its IEND chunk\)$/],
      ['/d/cut.jpg', 'unreadable', /^x is damaged or truncated \(the JPEG has no end marker\)$/],
      ['/d/cut.webp', 'unreadable', /truncated \(the WebP file declares 263 bytes but has 16\)/],
      ['/d/notes.png', 'unsupported', /^x: not an image \(the model reads PNG, JPEG, WebP, GIF, TIFF, AVIF\/HEIF or SVG\)$/],
      ['/d/old.bmp', 'unsupported', /^x: BMP images are not supported/],
    ];
    for (const [path, kind, message] of cases) {
      const r = await checkImageFile('x', [path], files);
      assert.equal(r.ok, false, path);
      if (!r.ok) {
        assert.equal(r.kind, kind, path);
        assert.match(r.message, message, path);
      }
    }
    const ok = await checkImageFile('x', ['/d/nope.png', '/d/ok.png'], files);
    assert.ok(ok.ok && ok.file.path === '/d/ok.png' && ok.file.format === 'png' && /^[0-9a-f]{64}$/.test(ok.file.sha256), 'the first candidate that exists');
  });

  it('checkDocument reports file kinds for images that need alt text, and never looks at the others', async () => {
    const looked: string[] = [];
    const spy: ImageFileAccess = { stat: (p) => (looked.push(p), files.stat(p)), readFile: files.readFile };
    const text = [
      '![](ok.png) ![](nope.png) ![](cut.png) ![](notes.png) ![](https://cdn.example/x.png) ![](//cdn.example/y.png)',
      '![A kite over a beach](other.png) <img src="deco.png" alt=""> ![](/ok.png)',
    ].join('\n');
    const { problems } = await checkDocument({ path: '/d/page.md', text, languageId: 'markdown' }, { files: spy, rootPath: '/d' });
    assert.deepEqual(
      problems.map((p) => [p.kind, p.altKind, p.image.src, p.message, text.slice(p.span.start, p.span.end), p.file?.path]),
      [
        ['missing', 'missing', 'ok.png', 'Image has no alt text.', '![](ok.png)', '/d/ok.png'],
        ['not-found', 'missing', 'nope.png', 'file not found: nope.png (no alt text)', 'nope.png', undefined],
        ['unreadable', 'missing', 'cut.png', 'cut.png is damaged or truncated (the PNG ends before its IEND chunk) (no alt text)', 'cut.png', undefined],
        ['unsupported', 'missing', 'notes.png', problems[3].message, 'notes.png', undefined],
        ['remote', 'missing', 'https://cdn.example/x.png', 'remote image: not checked (no alt text)', 'https://cdn.example/x.png', undefined],
        ['remote', 'missing', '//cdn.example/y.png', 'remote image: not checked (no alt text)', '//cdn.example/y.png', undefined],
        ['missing', 'missing', '/ok.png', 'Image has no alt text.', '![](/ok.png)', '/d/ok.png'],
      ],
    );
    assert.ok(!looked.some((p) => /other|deco|cdn/.test(p)), `looked only at images needing alt text: ${looked.join(', ')}`);

    const refs = '![][gone] and ![][gone]\n\n[gone]: gone.png\n';
    const byRef = await checkDocument({ path: '/d/r.md', text: refs, languageId: 'markdown' }, { files });
    assert.deepEqual(
      byRef.problems.map((p) => [p.kind, p.span.start]),
      [
        ['not-found', 0],
        ['not-found', 14],
      ],
      'reference-style: on each image, not on the shared definition',
    );
  });

  it('checkReferenceFile says why an image cannot be read: computed path, remote, or what checkImageFile finds', async () => {
    const [computed, remote, local] = parseImages('<><img src={url} /><img src="https://x.test/a.png" /><img src="ok.png" /></>', 'typescriptreact').references;
    assert.deepEqual(await checkReferenceFile(computed, '/d/p.tsx', { files }), {
      ok: false,
      kind: 'computed',
      message: 'the image path is computed by an expression: write this alt text by hand',
    });
    assert.deepEqual(await checkReferenceFile(remote, '/d/p.tsx', { files }), { ok: false, kind: 'remote', message: 'remote image: not fetched (https://x.test/a.png)' });
    const ok = await checkReferenceFile(local, '/d/p.tsx', { files });
    assert.ok(ok.ok && ok.file.path === '/d/ok.png');
  });

  it('reads the local disk through nodeFileAccess, permission errors included', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pg-alt-'));
    try {
      await writeFile(join(dir, 'a.png'), PNG);
      const ok = await checkImageFile('a.png', [join(dir, 'a.png')], nodeFileAccess);
      assert.equal(ok.ok, true);
      const missing = await checkImageFile('b.png', [join(dir, 'b.png'), join(dir, 'a.png', 'c.png')], nodeFileAccess);
      assert.deepEqual(missing, { ok: false, kind: 'not-found', message: 'file not found: b.png' });
      if (process.getuid?.() !== 0) {
        await chmod(join(dir, 'a.png'), 0);
        const denied = await checkImageFile('a.png', [join(dir, 'a.png')], nodeFileAccess);
        assert.equal(!denied.ok && denied.kind, 'unreadable');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('atomic writes', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('replaces the file in one rename: new content, same mode, no temp file left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pg-write-'));
    dirs.push(dir);
    const file = join(dir, 'doc.md');
    await writeFile(file, 'old ![](a.png)\n');
    await chmod(file, 0o640);
    const before = await stat(file);
    await writeFileAtomically(file, 'new ![A kite — über](a.png)\n');
    assert.equal(await readFile(file, 'utf8'), 'new ![A kite — über](a.png)\n');
    const afterStat = await stat(file);
    assert.equal(afterStat.mode & 0o777, 0o640, 'mode kept');
    assert.notEqual(afterStat.ino, before.ino, 'a new file renamed over the old one, not written in place');
    assert.deepEqual(await readdir(dir), ['doc.md'], 'no temp file left behind');
  });

  it('cleans up its temp file and leaves the target alone when the final rename fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pg-write-'));
    dirs.push(dir);
    // A folder in the way: the temp file is written, the rename over a non-empty folder fails.
    const target = join(dir, 'doc.md');
    await mkdir(target);
    await writeFile(join(target, 'keep.txt'), 'kept\n');
    await assert.rejects(writeFileAtomically(target, 'new\n'));
    assert.deepEqual(await readdir(dir), ['doc.md'], 'no temp file left behind');
    assert.equal(await readFile(join(target, 'keep.txt'), 'utf8'), 'kept\n');
  });
});
