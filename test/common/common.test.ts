// daemon/common/: the helpers every layer imports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorMessage } from '../../daemon/common/errors.js';
import { formatBytes } from '../../daemon/common/format.js';
import { IMAGE_EXTENSIONS, imageMimeType, isImagePath } from '../../daemon/common/images.js';

test('formatBytes: decimal units, as the Hub and disk tools show sizes', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1000), '1.0 kB');
  assert.equal(formatBytes(600_000), '600.0 kB');
  assert.equal(formatBytes(25_000_000), '25.0 MB');
  assert.equal(formatBytes(31_457_280), '31.5 MB');
  assert.equal(formatBytes(999_999_999), '1000.0 MB');
  assert.equal(formatBytes(1_000_000_000), '1.00 GB');
  assert.equal(formatBytes(5_860_000_000), '5.86 GB');
});

test('image files by extension, in any case; other files and bare names are not images', () => {
  assert.equal(imageMimeType('/a/b/Photo.JPG'), 'image/jpeg');
  assert.equal(imageMimeType('diagram.svg'), 'image/svg+xml');
  assert.equal(imageMimeType('scan.tif'), 'image/tiff');
  assert.equal(imageMimeType('/a/b.webp'), 'image/webp');
  assert.equal(imageMimeType('/a/b.md'), undefined);
  assert.equal(imageMimeType('/a/png'), undefined);
  assert.equal(imageMimeType('/a.png/readme'), undefined);
  // Not fooled by names an object has anyway.
  assert.equal(imageMimeType('x.constructor'), undefined);
  assert.equal(imageMimeType('x.toString'), undefined);
  assert.equal(isImagePath('a/b.AVIF'), true);
  assert.equal(isImagePath('a/b.gz'), false);
  assert.ok(IMAGE_EXTENSIONS.every((ext) => ext === ext.toLowerCase() && !ext.startsWith('.') && isImagePath(`x.${ext}`)));
});

test('errorMessage: an Error by its message, anything else as text', () => {
  assert.equal(errorMessage(new TypeError('bad input')), 'bad input');
  assert.equal(errorMessage('plain text'), 'plain text');
  assert.equal(errorMessage(42), '42');
  assert.equal(errorMessage(undefined), 'undefined');
});
