import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCssImages } from '../../daemon/alttext/references/css.js';
import { parseHtmlImages } from '../../daemon/alttext/references/html.js';
import { hoverableImages, parseImages, referenceAt } from '../../daemon/alttext/references/index.js';
import { parseJsxImages } from '../../daemon/alttext/references/jsx.js';
import { parseMarkdownImages } from '../../daemon/alttext/references/markdown.js';
import { findImagePaths, isRemote, resolveImagePath } from '../../daemon/alttext/references/paths.js';
import type { Span } from '../../daemon/alttext/references/types.js';

const at = (text: string, span: Span | undefined) => (span ? text.slice(span.start, span.end) : undefined);

describe('Markdown images', () => {
  it('finds inline images with the exact label and destination spans', () => {
    const text = 'Intro 😀 ![A *red* \\] cat](<my cat.png> "title") and ![](b.png)\n';
    const [a, b] = parseMarkdownImages(text);
    assert.equal(a.syntax, 'markdown-inline');
    assert.equal(a.src, 'my cat.png');
    assert.equal(at(text, a.srcSpan), 'my cat.png');
    assert.equal(at(text, a.span), '![A *red* \\] cat](<my cat.png> "title")');
    assert.equal(a.alt?.value, 'A red ] cat');
    assert.equal(at(text, a.alt?.valueSpan), 'A *red* \\] cat');
    assert.equal(a.alt?.dialect, 'markdown');
    assert.equal(b.src, 'b.png');
    assert.equal(b.alt?.value, '');
    assert.deepEqual(b.alt?.valueSpan, { start: text.indexOf('![](') + 2, end: text.indexOf('![](') + 2 });
  });

  it('resolves reference-style images to their definition and keeps the reference kind', () => {
    const text = '![Full][logo] ![logo][] ![logo]\n\n[logo]: ./img/logo%201.png "Logo"\n[link]: https://example.com\n';
    const refs = parseMarkdownImages(text);
    const images = refs.filter((r) => r.syntax === 'markdown-reference');
    assert.equal(images.length, 3);
    for (const image of images) {
      assert.equal(image.src, './img/logo%201.png');
      assert.equal(at(text, image.srcSpan), './img/logo%201.png');
    }
    assert.equal(images[0].alt?.value, 'Full');
    assert.equal(images[0].alt?.reference, undefined);
    assert.deepEqual(images[1].alt?.reference, { type: 'collapsed', rawLabel: 'logo' });
    assert.deepEqual(images[2].alt?.reference, { type: 'shortcut', rawLabel: 'logo' });
    assert.equal(at(text, images[2].span), '![logo]');
    // Only the definition used by images is an image location; [link] is not.
    const defs = refs.filter((r) => r.syntax === 'markdown-definition');
    assert.equal(defs.length, 1);
    assert.equal(at(text, defs[0].span), '[logo]: ./img/logo%201.png "Logo"');
  });

  it('reads <img> inside Markdown with parse5, at document offsets', () => {
    const text = '# T\n\nSee <img src="a.png" alt=\'x &amp; y\'> inline.\n\n<div>\n  <img src=b.png role="presentation" alt="">\n</div>\n';
    const [a, b] = parseMarkdownImages(text);
    assert.equal(a.syntax, 'html');
    assert.equal(a.src, 'a.png');
    assert.equal(at(text, a.srcSpan), 'a.png');
    assert.equal(a.alt?.value, 'x & y');
    assert.equal(a.alt?.quote, "'");
    assert.equal(at(text, a.alt?.valueSpan), 'x &amp; y');
    assert.equal(b.src, 'b.png');
    assert.equal(at(text, b.srcSpan), 'b.png');
    assert.equal(b.alt?.decorative, true);
    assert.equal(b.alt?.value, '');
  });

  it('ignores images in code', () => {
    const text = '`![a](x.png)`\n\n```\n![b](y.png)\n<img src="z.png">\n```\n';
    assert.deepEqual(parseMarkdownImages(text), []);
  });

  it('sees the decorative marker comment after an image', () => {
    const text = '![](a.png) <!-- decorative --> ![](b.png)\n';
    const [a, b] = parseMarkdownImages(text);
    assert.equal(a.alt?.decorative, true);
    assert.equal(b.alt?.decorative, false);
  });
});

describe('MDX images', () => {
  it('finds Markdown images and JSX <img> with attribute spans', () => {
    const text = 'import x from "./x.js"\n\n![Cat {1}](cat.png) {/* decorative */}\n\n<img src="dog.png" alt={"A dog"} />\n\nText <Image src=\'e.png\' {...props} /> end\n';
    const refs = parseMarkdownImages(text, { mdx: true });
    assert.equal(refs.length, 3);
    const [md, dog, e] = refs;
    assert.equal(md.alt?.dialect, 'mdx');
    assert.equal(md.alt?.decorative, true);
    assert.equal(dog.syntax, 'mdx-jsx');
    assert.equal(at(text, dog.srcSpan), 'dog.png');
    assert.equal(dog.alt?.value, 'A dog');
    assert.equal(dog.alt?.dynamic, false);
    assert.equal(at(text, dog.alt?.attributeSpan), 'alt={"A dog"}');
    assert.equal(dog.alt?.valueSpan, undefined);
    assert.equal(at(text, dog.span), '<img src="dog.png" alt={"A dog"} />');
    assert.equal(e.src, 'e.png');
    assert.equal(e.alt?.value, undefined);
    assert.equal(e.alt?.dynamic, true, 'alt may come from the spread');
  });

  it('reports a syntax error instead of throwing', () => {
    const result = parseImages('<img src="a.png"\n\n{oops(\n', 'mdx');
    assert.deepEqual(result.references, []);
    assert.match(result.error ?? '', /./);
  });
});

describe('HTML images', () => {
  it('finds <img> in a document, including <template> content, with exact spans', () => {
    const text = '<!doctype html><body>\n<img\n  src = "a b.png"\n  alt=pic>\n<template><IMG SRC="t.png" ALT="" aria-hidden="true"/></template>\n<img alt="no src">\n';
    const [a, t] = parseHtmlImages(text);
    assert.equal(a.src, 'a b.png');
    assert.equal(at(text, a.srcSpan), 'a b.png');
    assert.equal(a.alt?.value, 'pic');
    assert.equal(a.alt?.quote, '');
    assert.equal(at(text, a.alt?.attributeSpan), 'alt=pic');
    assert.equal(a.alt?.insertAt, text.indexOf('alt=pic') + 'alt=pic'.length);
    assert.equal(at(text, a.span), '<img\n  src = "a b.png"\n  alt=pic>');
    assert.equal(t.src, 't.png');
    assert.equal(t.alt?.decorative, true);
    assert.equal(parseHtmlImages(text).length, 2, 'an <img> without src is not an image reference');
  });

  it('counts offsets in UTF-16 code units like VS Code', () => {
    const text = '<p>😀😀</p><img src="a.png">';
    const [a] = parseHtmlImages(text);
    assert.equal(at(text, a.srcSpan), 'a.png');
  });
});

describe('JSX / TSX images', () => {
  it('finds <img> and <Image> with literal, expression and imported src', () => {
    const text = [
      "import logo from './assets/logo.svg';",
      'export const A = <T,>(p: T) => (',
      '  <div>',
      '    <img src="/a.png" alt="" role="presentation" />',
      '    <Image src={logo} alt={t("x")} />',
      "    <img src={`b.png`} alt='It&apos;s' aria-hidden={true} />",
      '    <img src={url} />',
      '  </div>',
      ');',
    ].join('\n');
    const refs = parseJsxImages(text, { typescript: true });
    assert.equal(refs.length, 4);
    const [a, logo, b, dyn] = refs;
    assert.equal(a.src, '/a.png');
    assert.equal(at(text, a.srcSpan), '/a.png');
    assert.equal(a.alt?.value, '');
    assert.equal(a.alt?.decorative, true);
    assert.equal(at(text, a.alt?.valueSpan), '');
    assert.equal(logo.src, './assets/logo.svg');
    assert.equal(at(text, logo.srcSpan), './assets/logo.svg', 'src follows the default import');
    assert.equal(logo.alt?.dynamic, true);
    assert.equal(b.src, '', 'a template literal src is not read as a path');
    assert.equal(b.alt?.value, "It's");
    assert.equal(b.alt?.quote, "'");
    assert.equal(b.alt?.decorative, true);
    assert.equal(dyn.src, '');
    assert.equal(dyn.alt?.value, undefined);
    assert.equal(dyn.alt?.insertAt, text.indexOf('src={url}') + 'src={url}'.length);
  });

  it('parses plain JSX without TypeScript syntax', () => {
    const text = 'function A() { return <img src="x.jpg" alt="X" /> }';
    const [x] = parseJsxImages(text);
    assert.equal(at(text, x.srcSpan), 'x.jpg');
    assert.equal(at(text, x.alt?.valueSpan), 'X');
  });
});

describe('CSS url()', () => {
  it('finds quoted and unquoted url() and skips comments, strings and data: URLs', () => {
    const text =
      '/* url(no.png) */\n.a { background: url( a.png ) , URL("b c.png"); content: "url(s.png)"; }\n.d { mask: url(data:image/png;base64,AAA) }\n.e { background: url(e\\(1\\).png) }';
    const refs = parseCssImages(text);
    assert.deepEqual(
      refs.map((r) => r.src),
      ['a.png', 'b c.png', 'e(1).png'],
    );
    assert.deepEqual(
      refs.map((r) => at(text, r.srcSpan)),
      ['a.png', 'b c.png', 'e\\(1\\).png'],
    );
    assert.equal(at(text, refs[0].span), 'url( a.png )');
    assert.equal(at(text, refs[1].span), 'URL("b c.png")');
  });
});

describe('paths in any file', () => {
  it('finds quoted and bare image paths but not URLs', () => {
    const text = 'icon = "assets/my icon.png"\n# see ../docs/diagram.svg, https://x.org/a.png and //cdn.x/b.jpg\nfoo.pngx';
    const refs = findImagePaths(text);
    assert.deepEqual(
      refs.map((r) => r.src),
      ['assets/my icon.png', '../docs/diagram.svg'],
    );
    assert.equal(at(text, refs[1].srcSpan), '../docs/diagram.svg');
  });

  it('classifies remote references', () => {
    assert.equal(isRemote('https://a/b.png'), true);
    assert.equal(isRemote('//cdn/b.png'), true);
    assert.equal(isRemote('data:image/png;base64,AA'), true);
    assert.equal(isRemote('file:///a/b.png'), false);
    assert.equal(isRemote('C:\\pics\\a.png'), false);
    assert.equal(isRemote('img/a.png'), false);
  });

  it('resolves relative, site-root and encoded paths to candidate URI paths', () => {
    const ctx = { documentPath: '/ws/docs/guide.md', workspaceFolderPath: '/ws', urlEncoded: true };
    assert.deepEqual(resolveImagePath('img/a%20b.png?raw#x', ctx), ['/ws/docs/img/a b.png', '/ws/img/a b.png']);
    assert.deepEqual(resolveImagePath('../img/a.png', ctx), ['/ws/img/a.png']);
    assert.deepEqual(resolveImagePath('/static/a.png', ctx), ['/ws/static/a.png', '/static/a.png']);
    assert.deepEqual(resolveImagePath('https://x/a.png', ctx), []);
    assert.deepEqual(resolveImagePath('100%.png', { ...ctx, urlEncoded: true }), ['/ws/docs/100%.png', '/ws/100%.png']);
    assert.deepEqual(resolveImagePath('a%20b.png', { ...ctx, urlEncoded: false }), ['/ws/docs/a%20b.png', '/ws/a%20b.png']);
    assert.deepEqual(resolveImagePath('file:///tmp/x%20y.png', ctx), ['/tmp/x y.png']);
  });

  it('picks the reference under the cursor, structured ones before bare paths', () => {
    const text = '![A](a.png) and `b.png`\n';
    const refs = hoverableImages(text, 'markdown');
    assert.deepEqual(
      refs.map((r) => r.syntax),
      ['markdown-inline', 'path'],
    );
    assert.equal(referenceAt(refs, text.indexOf('a.png'))?.src, 'a.png');
    assert.equal(referenceAt(refs, text.indexOf('b.png') + 1)?.src, 'b.png');
    assert.equal(referenceAt(refs, text.indexOf('and')), undefined);
  });
});
