import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Image, Paragraph } from 'mdast';
import { fromMarkdown } from 'mdast-util-from-markdown';
import { thumbnailMarkdown } from '../../daemon/lsp/thumbnail.js';

/** The one image the Markdown holds, as a CommonMark parser reads it. */
function parsedImage(markdown: string): Image {
  const root = fromMarkdown(markdown);
  assert.equal(root.children.length, 1, `one block: ${markdown}`);
  const para = root.children[0] as Paragraph;
  assert.equal(para.type, 'paragraph');
  assert.equal(para.children.length, 1, `nothing but the image: ${markdown}`);
  const [image] = para.children;
  assert.equal(image.type, 'image', `an image: ${markdown}`);
  return image as Image;
}

describe('thumbnailMarkdown', () => {
  it("is a Markdown image with VS Code's width suffix, not HTML (whose src VS Code does not map)", () => {
    const md = thumbnailMarkdown('file:///home/me/images/shapes.png', 64);
    assert.equal(md, '![](file:///home/me/images/shapes.png|width=64)');
    assert.equal(parsedImage(md).url, 'file:///home/me/images/shapes.png|width=64');
  });

  it('keeps a URI as vscode.Uri.toString() encodes it (spaces, parentheses, unicode) unchanged', () => {
    const uri = 'file:///home/me/my%20pics/a%281%29%20%C3%BC.png';
    assert.equal(parsedImage(thumbnailMarkdown(uri, 240)).url, `${uri}|width=240`);
  });

  it('puts a destination that would not parse bare in angle brackets, escaped so it reads back exactly', () => {
    for (const uri of ['vscode-vfs://host/a b.png', 'file:///x/(unbalanced.png', 'file:///x/a)b.png', 'file:///x/<a>\\b.png']) {
      const md = thumbnailMarkdown(uri, 100);
      assert.match(md, /^!\[\]\(<.*>\)$/, md);
      assert.equal(parsedImage(md).url, `${uri}|width=100`, md);
    }
  });

  it('writes a whole number of pixels', () => {
    assert.equal(parsedImage(thumbnailMarkdown('file:///a.png', 63.6)).url, 'file:///a.png|width=64');
  });
});
