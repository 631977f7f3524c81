// What package.json promises the user: settings read in every kind of window, the first-run
// walkthrough with pages that exist, and the commands its buttons run.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const props = pkg.contributes.configuration.properties;

test('model path and provider are read from User, Remote and Workspace settings', () => {
  // VS Code drops `machine` and `machine-overridable` settings found in (local) User settings from
  // remote windows (SSH, code-server), and `application` ones from Workspace settings.
  for (const key of ['paligemma.modelPath', 'paligemma.executionProvider']) {
    const scope = props[key].scope ?? 'window';
    assert.ok(['window', 'resource'].includes(scope), `${key} has scope ${scope}`);
  }
  // The workspace still cannot point an untrusted window at a model folder.
  assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes('paligemma.modelPath'));
});

test('the walkthrough has the three first-run steps, pages on disk, commands contributed', () => {
  const [walkthrough] = pkg.contributes.walkthroughs;
  const commands = new Set(pkg.contributes.commands.map((c: { command: string }) => c.command));
  assert.deepEqual(
    walkthrough.steps.map((s: { id: string }) => s.id),
    ['download', 'chooseFolder', 'convert'],
  );
  for (const step of walkthrough.steps) {
    assert.ok(existsSync(join(root, step.media.markdown)), step.media.markdown);
    const linked = [...step.description.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1]);
    assert.equal(linked.length, 1, `${step.id} has one button`);
    assert.ok(commands.has(linked[0]), `${linked[0]} is a contributed command`);
  }
});

test('the token is set by a command; the old plain setting is marked deprecated', () => {
  assert.ok(pkg.contributes.commands.some((c: { command: string }) => c.command === 'paligemma.setHuggingFaceToken'));
  assert.match(props['paligemma.huggingFaceToken'].markdownDeprecationMessage, /Set Hugging Face Token/);
});

test("npm skips onnxruntime-node's CUDA download without an .npmrc key npm warns about", () => {
  assert.equal(pkg.allowScripts['onnxruntime-node'], false);
  const npmrc = join(root, '.npmrc');
  if (existsSync(npmrc)) assert.doesNotMatch(readFileSync(npmrc, 'utf8'), /onnxruntime-node-install/);
});
