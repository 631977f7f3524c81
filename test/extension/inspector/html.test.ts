import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { contentSecurityPolicy, inspectorHtml } from '../../../extension/inspector/html.js';

const options = { cspSource: 'https://file+.vscode-resource.vscode-cdn.net', scriptUri: 'https://x/dist/webview.js', styleUri: 'https://x/media/inspector.css' };

describe('inspector HTML', () => {
  it('has a strict CSP whose nonce is the one on the script tag', () => {
    const html = inspectorHtml({ ...options, nonce: 'abc123' });
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    assert.equal(csp, contentSecurityPolicy(options.cspSource, 'abc123'));
    assert.match(csp!, /^default-src 'none';/);
    assert.match(csp!, /script-src 'nonce-abc123'/);
    assert.doesNotMatch(csp!, /unsafe-inline|unsafe-eval|\*/);
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]);
    assert.deepEqual(scripts, [' nonce="abc123" src="https://x/dist/webview.js"']);
  });

  it('uses a fresh nonce for every load', () => {
    const nonce = (html: string) => /nonce="([^"]+)"/.exec(html)![1];
    const a = nonce(inspectorHtml(options));
    const b = nonce(inspectorHtml(options));
    assert.notEqual(a, b);
    assert.ok(a.length >= 20);
  });

  it('has every element the webview script looks up', () => {
    const html = inspectorHtml(options);
    const script = readFileSync('webview/main.ts', 'utf8');
    const ids = new Set([...script.matchAll(/\$\('([\w-]+)'\)/g)].map((m) => m[1]));
    assert.ok(ids.size > 15);
    for (const id of ids) assert.match(html, new RegExp(`id="${id}"`), `#${id} missing from the markup`);
  });
});
