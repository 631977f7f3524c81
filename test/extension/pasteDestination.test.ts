// Where pasted images are saved: markdown.copyFiles.destination as VS Code's built-in Markdown paste
// reads it, numbered names, and the link written into the document.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredPath, linkPath, numberedPath, pastedFileName, type DestinationInput } from '../../extension/paste/destination.js';

const base: DestinationInput = {
  documentPath: '/ws/docs/guide/intro.md',
  workspaceFolderPath: '/ws',
  workspaceFolderPaths: ['/ws'],
  fileName: 'image.png',
  destinations: {},
};

test('no setting: next to the document', () => {
  assert.equal(desiredPath(base), '/ws/docs/guide/image.png');
});

test('a relative glob matches anywhere; a destination ending in / gets the file name', () => {
  assert.equal(desiredPath({ ...base, destinations: { '*.md': 'images/' } }), '/ws/docs/guide/images/image.png');
  assert.equal(desiredPath({ ...base, destinations: { '*.html': 'x/' } }), '/ws/docs/guide/image.png', 'no match: the default');
});

test('a leading / is the workspace folder, for the glob and for the destination; variables resolve', () => {
  const destinations = { '/docs/**/*.md': '/assets/${documentBaseName}/${fileName}' };
  assert.equal(desiredPath({ ...base, destinations }), '/ws/assets/intro/image.png');
  assert.equal(desiredPath({ ...base, destinations: { '**/*.md': '${documentWorkspaceFolder}/media/${documentRelativeDirName}/' } }), '/ws/media/docs/guide/image.png');
  assert.equal(desiredPath({ ...base, destinations: { '**/*.md': '${documentDirName}/../img/${documentExtName}-${fileExtName}.${fileExtName}' } }), '/ws/docs/img/md-png.png');
});

test('${name/regex/replacement/} transforms, unknown variables resolve to nothing', () => {
  assert.equal(desiredPath({ ...base, destinations: { '**': 'shots/${fileName/(.*)\\.png/$1-pasted.png/}' } }), '/ws/docs/guide/shots/image-pasted.png');
  assert.equal(desiredPath({ ...base, destinations: { '**': 'a${nope}b/${fileName}' } }), '/ws/docs/guide/ab/image.png');
});

test('the first glob that matches wins, in the order written', () => {
  assert.equal(desiredPath({ ...base, destinations: { '**/guide/*.md': 'g/', '**/*.md': 'all/' } }), '/ws/docs/guide/g/image.png');
});

test('names are numbered like the built-in paste unless overwriting', async () => {
  const taken = new Set(['/ws/docs/image.png', '/ws/docs/image-1.png']);
  assert.equal(await numberedPath('/ws/docs/image.png', async (p) => taken.has(p), false), '/ws/docs/image-2.png');
  assert.equal(await numberedPath('/ws/docs/image.png', async (p) => taken.has(p), true), '/ws/docs/image.png');
  assert.equal(await numberedPath('/ws/docs/new.png', async (p) => taken.has(p), false), '/ws/docs/new.png');
});

test('the link is relative to the document and escapes spaces and brackets', () => {
  assert.equal(linkPath('/ws/docs/intro.md', '/ws/docs/images/image.png'), 'images/image.png');
  assert.equal(linkPath('/ws/docs/intro.md', '/ws/assets/my shot (1).png'), '../assets/my%20shot%20%281%29.png');
  assert.equal(pastedFileName(undefined, 'image/jpeg'), 'image.jpg');
  assert.equal(pastedFileName('', 'image/png'), 'image.png');
  assert.equal(pastedFileName('a/b.png', 'image/png'), 'a-b.png');
});
