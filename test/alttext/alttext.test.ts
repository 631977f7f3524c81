import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchEdits, planBatch, type BatchDocument } from '../../daemon/alttext/batch.js';
import { captionToAltText } from '../../daemon/alttext/caption.js';
import { findAltTextProblems } from '../../daemon/alttext/diagnose.js';
import { AltEditError, altTextEdits, applyEdits, decorativeEdits, normalizeEdits } from '../../daemon/alttext/edits.js';
import type { ImageFileAccess } from '../../daemon/alttext/imageFiles.js';
import { escapeHtmlAttribute, escapeJsxAttribute, escapeMarkdownLabel } from '../../daemon/alttext/escape.js';
import { placeholderReason } from '../../daemon/alttext/placeholder.js';
import { parseImages } from '../../daemon/alttext/references/index.js';
import type { ImageReference } from '../../daemon/alttext/references/types.js';

const TRICKY = [
  'A cat [sitting] on a *mat* with_underscores',
  'Back\\slash `code` <b>bold</b> & &amp; &#38; done',
  'Quotes "double" and \'single\' and {braces} ! ![not an image](x) | pipe',
  'Ünïcödé 😀 text',
];

function only(text: string, languageId: string): ImageReference {
  const refs = parseImages(text, languageId).references.filter((r) => r.alt);
  assert.equal(refs.length, 1, `expected one image in ${JSON.stringify(text)}`);
  return refs[0];
}

/** Set the alt text, re-parse with the real parser, and return the image read back. */
function roundTrip(text: string, languageId: string, alt: string) {
  const image = only(text, languageId);
  const edited = applyEdits(text, altTextEdits(image, alt));
  const after = only(edited, languageId);
  return { edited, image, after };
}

describe('placeholder alt text', () => {
  it('flags tool defaults, generic words and file names', () => {
    for (const alt of ['image', 'Image', 'IMG', 'Screenshot', 'screen shot', 'alt text', 'picture', 'An image.', 'Enter image description here', '1'])
      assert.ok(placeholderReason(alt, 'pics/a.png'), alt);
    assert.match(placeholderReason('Screenshot 2024-03-01 at 10.22.31', 'x.png') ?? '', /generated file name/);
    assert.match(placeholderReason('IMG_2041', 'x.png') ?? '', /generated file name/);
    assert.match(placeholderReason('hero-banner_2', 'img/hero-banner_2.webp') ?? '', /file name/);
    assert.match(placeholderReason('photo.JPG', 'other.png') ?? '', /file name/);
  });

  it('accepts real descriptions, including a one-word one that matches a plain file name', () => {
    for (const alt of ['A red bicycle leaning on a wall', 'Bar chart of monthly sales', 'Screenshots of the settings page, side by side'])
      assert.equal(placeholderReason(alt, 'pics/a.png'), undefined, alt);
    assert.equal(placeholderReason('Cat', 'cat.png'), undefined);
  });
});

describe('escaping', () => {
  it('escapes Markdown label syntax minimally', () => {
    assert.equal(escapeMarkdownLabel('a [b] *c* _d_ `e` <f> \\ & &amp;'), 'a \\[b\\] \\*c\\* \\_d\\_ \\`e\\` \\<f\\> \\\\ & \\&amp;');
    assert.equal(escapeMarkdownLabel('{x}', true), '\\{x\\}');
    assert.equal(escapeMarkdownLabel('{x}', false), '{x}');
  });

  it('escapes a pipe in Markdown so that a table cell keeps its columns', () => {
    const text = '| a | b |\n|---|---|\n| ![](x.png) | y |\n';
    const image = only(text, 'markdown');
    const edited = applyEdits(text, altTextEdits(image, 'Input | output'));
    assert.equal(edited, '| a | b |\n|---|---|\n| ![Input \\| output](x.png) | y |\n');
    assert.equal(only(edited, 'markdown').alt?.value, 'Input | output');
  });

  it('escapes attribute quotes and ampersands for the quote in use', () => {
    assert.equal(escapeHtmlAttribute(`a "b" 'c' & d`, '"'), `a &quot;b&quot; 'c' &amp; d`);
    assert.equal(escapeHtmlAttribute(`a "b" 'c'`, "'"), `a "b" &#39;c&#39;`);
    assert.equal(escapeJsxAttribute(`it's {x} "y"`, "'"), `it&apos;s {x} "y"`);
  });

  for (const alt of TRICKY) {
    it(`round-trips through every parser: ${alt}`, () => {
      const cases: [string, string][] = [
        ['Before ![old](a.png) after\n', 'markdown'],
        ['![](a.png)\n', 'markdown'],
        ['Before ![old](a.png) after\n', 'mdx'],
        ['<p><img src="a.png" alt="old"></p>', 'html'],
        ["<p><img src='a.png' alt='old'></p>", 'html'],
        ['<img src="a.png">\n', 'markdown'],
        ['const x = <img src="a.png" alt="old" />;', 'javascriptreact'],
        ["const x = <img src='a.png' alt='old' />;", 'typescriptreact'],
        ['<img src="a.png" />\n', 'mdx'],
      ];
      for (const [text, lang] of cases) {
        const { after, edited } = roundTrip(text, lang, alt);
        assert.equal(after.alt?.value, alt, `${lang}: ${edited}`);
        assert.equal(after.src, 'a.png', `${lang}: path unchanged`);
      }
    });
  }
});

describe('alt text edits', () => {
  it('replaces only the Markdown label and leaves the destination byte for byte', () => {
    const text = 'x ![old *alt*](<./my img.png> "t") y';
    const image = only(text, 'markdown');
    const edits = altTextEdits(image, 'A dog');
    assert.deepEqual(edits, [{ start: 4, end: 13, newText: 'A dog' }]);
    assert.equal(applyEdits(text, edits), 'x ![A dog](<./my img.png> "t") y');
  });

  it('keeps collapsed and shortcut references pointing at their definition', () => {
    const text = '![logo][] and ![logo]\n\n[logo]: l.png\n';
    const refs = parseImages(text, 'markdown').references.filter((r) => r.alt);
    let edited = text;
    for (const image of [...refs].reverse()) edited = applyEdits(edited, altTextEdits(image, 'Acme [logo]'));
    assert.equal(edited, '![Acme \\[logo\\]][logo] and ![Acme \\[logo\\]][logo]\n\n[logo]: l.png\n');
    const after = parseImages(edited, 'markdown').references.filter((r) => r.alt);
    assert.deepEqual(
      after.map((r) => [r.alt?.value, r.src]),
      [
        ['Acme [logo]', 'l.png'],
        ['Acme [logo]', 'l.png'],
      ],
    );
  });

  it('inserts a missing HTML attribute after the last one, before the self-closing slash', () => {
    const text = '<img src="a.png" width=10 />';
    const edited = applyEdits(text, altTextEdits(only(text, 'html'), 'A "quoted" & tree'));
    assert.equal(edited, '<img src="a.png" width=10 alt="A &quot;quoted&quot; &amp; tree" />');
  });

  it('rewrites an unquoted or expression alt as a quoted attribute', () => {
    assert.equal(applyEdits('<img src=a.png alt=pic>', altTextEdits(only('<img src=a.png alt=pic>', 'html'), 'Red')), '<img src=a.png alt="Red">');
    const jsx = '<img src="a.png" alt={""} />';
    assert.equal(applyEdits(jsx, altTextEdits(only(jsx, 'javascriptreact'), 'Red')), '<img src="a.png" alt="Red" />');
  });

  it('inserts after an unquoted src without touching it', () => {
    const text = '<img src=a.png>';
    const image = only(text, 'html');
    assert.equal(applyEdits(text, altTextEdits(image, 'X')), '<img src=a.png alt="X">');
  });

  it('refuses to overwrite computed alt text', () => {
    const jsx = '<img src="a.png" alt={t("k")} />';
    assert.throws(() => altTextEdits(only(jsx, 'javascriptreact'), 'X'), AltEditError);
  });

  it('marks images decorative in each dialect', () => {
    const cases: [string, string, string][] = [
      ['![old](a.png) x', 'markdown', '![](a.png)<!-- decorative --> x'],
      ['![old](a.png) x', 'mdx', '![](a.png){/* decorative */} x'],
      ['<img src="a.png" alt="old">', 'html', '<img src="a.png" alt="" role="presentation">'],
      ['<img src="a.png">', 'html', '<img src="a.png" alt="" role="presentation">'],
      ['<img src="a.png" alt="" aria-hidden="true">', 'html', '<img src="a.png" alt="" aria-hidden="true">'],
      ['<img src="a.png" />', 'typescriptreact', '<img src="a.png" alt="" role="presentation" />'],
    ];
    for (const [text, lang, expected] of cases) {
      const edited = applyEdits(text, decorativeEdits(only(text, lang)));
      assert.equal(edited, expected, lang);
      const after = only(edited, lang);
      assert.equal(after.alt?.decorative, true, `${lang} reads back as decorative`);
      assert.equal(findAltTextProblems(edited, lang).problems.length, 0, `${lang}: no diagnostic left`);
    }
  });

  it('merges touching edits and rejects overlapping ones', () => {
    assert.deepEqual(
      normalizeEdits([
        { start: 5, end: 5, newText: 'b' },
        { start: 2, end: 5, newText: 'a' },
        { start: 5, end: 5, newText: 'c' },
      ]),
      [{ start: 2, end: 5, newText: 'abc' }],
    );
    assert.throws(
      () =>
        normalizeEdits([
          { start: 0, end: 4, newText: '' },
          { start: 3, end: 5, newText: '' },
        ]),
      AltEditError,
    );
  });
});

describe('diagnostics', () => {
  it('reports missing, empty and placeholder alt text with useful ranges', () => {
    const text = '![](a.png) ![screenshot](b.png) ![A red door](c.png) ![](d.png)<!-- decorative -->\n\n<img src="e.png"> <img src="f.png" alt>\n';
    const { problems } = findAltTextProblems(text, 'markdown');
    assert.deepEqual(
      problems.map((p) => [p.kind, text.slice(p.span.start, p.span.end)]),
      [
        ['missing', '![](a.png)'],
        ['placeholder', 'screenshot'],
        ['missing', '<img src="e.png">'],
        ['empty', '<img src="f.png" alt>'],
      ],
    );
  });

  it('does not judge computed alt text', () => {
    const { problems } = findAltTextProblems('<img src="a.png" alt={caption} />', 'typescriptreact');
    assert.deepEqual(problems, []);
  });
});

/** An in-memory file system: path -> bytes, or an Error to throw on read. */
function memoryFiles(entries: Record<string, Uint8Array | Error | 'dir'>): ImageFileAccess {
  return {
    async stat(path) {
      const e = entries[path];
      if (e === undefined) return undefined;
      if (e === 'dir') return { type: 'directory', size: 0 };
      return { type: 'file', size: e instanceof Error ? 1 : e.length };
    },
    async readFile(path) {
      const e = entries[path];
      if (e instanceof Uint8Array) return e;
      throw e instanceof Error ? e : new Error('not a file');
    },
  };
}
const PNG_END = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
const png = (id: number) => Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, id, 1, 2, 3, ...PNG_END]);

describe('batch fill', () => {
  const docs: BatchDocument[] = [
    { uri: 'file:///ws/a.md', path: '/ws/a.md', version: 3, languageId: 'markdown', text: '![](img/cat.png)\n![image](img/dog.png)\n![](https://x/y.png)\n' },
    {
      uri: 'file:///ws/b.html',
      path: '/ws/b.html',
      version: 1,
      languageId: 'html',
      text: '<img src="img/cat.png"><img src="copy-of-cat.png"><img src="gone.png" alt=""><img src="gone.png">',
    },
    { uri: 'file:///ws/c.mdx', path: '/ws/c.mdx', version: 1, languageId: 'mdx', text: '<img src="x.png"\n\n{(' },
  ];
  const files = memoryFiles({ '/ws/img/cat.png': png(1), '/ws/copy-of-cat.png': png(1), '/ws/img/dog.png': png(2) });

  it('describes each image content once and keeps what it cannot describe with the reason', async () => {
    const reads: string[] = [];
    const plan = await planBatch(docs, { files: { stat: files.stat, readFile: (p) => (reads.push(p), files.readFile(p)) } });
    assert.deepEqual(reads, ['/ws/img/cat.png', '/ws/img/dog.png', '/ws/copy-of-cat.png'], 'each file read once, however many pages use it');
    assert.deepEqual(
      plan.items.map((i) => [i.uri, i.problem.kind, i.file.path]),
      [
        ['file:///ws/a.md', 'missing', '/ws/img/cat.png'],
        ['file:///ws/a.md', 'placeholder', '/ws/img/dog.png'],
        ['file:///ws/b.html', 'missing', '/ws/img/cat.png'],
        ['file:///ws/b.html', 'missing', '/ws/copy-of-cat.png'],
      ],
    );
    assert.equal(plan.images.size, 2, 'cat.png and its copy are one picture');
    assert.equal(plan.items[0].imageKey, plan.items[3].imageKey);
    assert.deepEqual(
      plan.skipped.map((s) => [s.uri, s.problem?.kind, s.reason]),
      [
        ['file:///ws/a.md', 'remote', 'remote image: not fetched (https://x/y.png)'],
        ['file:///ws/b.html', 'not-found', 'file not found: gone.png'],
        ['file:///ws/c.mdx', undefined, plan.skipped[2].reason],
      ],
    );
    assert.match(plan.skipped[2].reason, /^does not parse: /);
  });

  it('respects the chosen problem kinds', async () => {
    const plan = await planBatch(docs, { files, kinds: ['placeholder'] });
    assert.deepEqual(
      plan.items.map((i) => i.problem.kind),
      ['placeholder'],
    );
  });

  it('builds one sorted edit list per document from the accepted proposals only', async () => {
    const plan = await planBatch(docs, { files });
    const accepted = [
      { item: plan.items[1], altText: 'A dog' },
      { item: plan.items[0], altText: 'A cat' },
      { item: plan.items[2], altText: 'A cat' },
    ];
    const edits = batchEdits(accepted);
    assert.deepEqual([...edits.keys()], ['file:///ws/a.md', 'file:///ws/b.html']);
    assert.equal(applyEdits(docs[0].text, edits.get('file:///ws/a.md')!), '![A cat](img/cat.png)\n![A dog](img/dog.png)\n![](https://x/y.png)\n');
    assert.equal(
      applyEdits(docs[1].text, edits.get('file:///ws/b.html')!),
      '<img src="img/cat.png" alt="A cat"><img src="copy-of-cat.png"><img src="gone.png" alt=""><img src="gone.png">',
    );
    assert.equal(batchEdits([{ item: plan.items[0], altText: '  ' }]).size, 0, 'blank proposals are dropped');
  });
});

describe('caption to alt text', () => {
  it('drops the "image of" preamble and starts with a capital', () => {
    assert.equal(captionToAltText('a picture of a  cat\non a mat'), 'A cat on a mat');
    assert.equal(captionToAltText('screenshot of a settings dialog'), 'Screenshot of a settings dialog');
    assert.equal(captionToAltText('  '), '');
  });
});
