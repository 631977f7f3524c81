// The pasted reference's placeholder and its replacement, read back through the real parsers: the
// placeholder is what the diagnostic flags, the replacement is exactly the model's text, and a
// reference the user changed meanwhile is left alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyEdits } from '../../daemon/alttext/edits.js';
import { findAltTextProblems } from '../../daemon/alttext/diagnose.js';
import { parseImages } from '../../daemon/alttext/references/index.js';
import { insertedReference, placeholderEdit, PLACEHOLDER_ALT, type PasteDialect } from '../../extension/paste/placeholder.js';

const ALT = 'A cat on a [red] mat *sleeping* & "dreaming" <of> fish_bones';

for (const [dialect, languageId] of [
  ['markdown', 'markdown'],
  ['mdx', 'mdx'],
  ['html', 'html'],
] as [PasteDialect, string][]) {
  test(`${dialect}: the placeholder is flagged; the model's text replaces it and reads back exactly`, () => {
    const ref = insertedReference(dialect, 'media/image-1.png');
    const doc = `# Notes\n\nBefore ${ref.text} after\n`;
    assert.equal(doc.slice(doc.indexOf(ref.text) + ref.altOffset).slice(0, PLACEHOLDER_ALT.length), PLACEHOLDER_ALT);
    const flagged = findAltTextProblems(doc, languageId).problems;
    assert.equal(flagged.length, 1, 'the placeholder alone is flagged, should it stay');
    const edit = placeholderEdit(doc, ref, ALT, dialect);
    assert.ok(edit);
    const after = applyEdits(doc, [edit]);
    const [image] = parseImages(after, languageId).references;
    assert.equal(image?.src, 'media/image-1.png');
    assert.equal(image?.alt?.value, ALT, after);
    assert.deepEqual(findAltTextProblems(after, languageId).problems, []);
    assert.ok(after.startsWith('# Notes\n\nBefore ') && after.endsWith(' after\n'), 'nothing else changes');
  });
}

test('a reference the user changed, or one that appears twice, is left alone', () => {
  const ref = insertedReference('markdown', 'image.png');
  assert.equal(placeholderEdit(`![image descriptio](image.png)`, ref, ALT, 'markdown'), undefined, 'placeholder edited');
  assert.equal(placeholderEdit(`![image description](image2.png)`, ref, ALT, 'markdown'), undefined, 'path edited');
  assert.equal(placeholderEdit(`${ref.text}\n${ref.text}`, ref, ALT, 'markdown'), undefined, 'ambiguous');
  assert.equal(placeholderEdit('', ref, ALT, 'markdown'), undefined, 'not pasted (another paste kind was chosen)');
  // Typing elsewhere on the line does not matter.
  assert.ok(placeholderEdit(`See ${ref.text} here`, ref, ALT, 'markdown'));
});
