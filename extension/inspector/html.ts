// The inspector webview's HTML: a strict CSP with a fresh nonce for every load. No `vscode` import,
// so the page is unit-tested in Node.
import { randomBytes } from 'node:crypto';

export interface InspectorHtmlOptions {
  /** `webview.cspSource`: the origin webview resources are served from. */
  cspSource: string;
  scriptUri: string;
  styleUri: string;
  /** Defaults to a fresh random nonce; tests pass their own. */
  nonce?: string;
}

export function newNonce(): string {
  return randomBytes(18).toString('base64url');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    // Webview resources, and pasted/dropped images shown as data: URLs.
    `img-src ${cspSource} data: blob:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function inspectorHtml(options: InspectorHtmlOptions): string {
  const nonce = options.nonce ?? newNonce();
  const csp = contentSecurityPolicy(options.cspSource, nonce);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttr(options.styleUri)}">
<title>Image Inspector</title>
</head>
<body>
<header>
  <span id="image-name"></span>
  <vscode-button id="describe">Describe</vscode-button>
  <vscode-button id="extract">Extract text</vscode-button>
  <vscode-button id="open" secondary>Open image…</vscode-button>
</header>
<div id="busy" hidden role="status"><vscode-progress-ring></vscode-progress-ring><span id="busy-text"></span><vscode-button id="cancel" secondary>Cancel</vscode-button></div>
<div id="error" hidden role="alert"></div>
<div id="layout">
  <div>
    <div id="empty">
      <p>Paste an image (Ctrl+V), drop one here, or</p>
      <vscode-button id="open-empty">Open image…</vscode-button>
    </div>
    <div id="stage" hidden><img id="image" alt=""><div id="overlay"></div></div>
  </div>
  <div>
    <section>
      <h2>Caption <span class="meta" id="caption-meta"></span></h2>
      <p id="caption"></p>
    </section>
    <section>
      <h2>Text in the image <span class="meta" id="ocr-meta"></span></h2>
      <pre id="ocr"></pre>
      <div class="row"><vscode-button id="copy-ocr" secondary>Copy text</vscode-button></div>
    </section>
    <section>
      <h2>Objects <span class="meta" id="objects-meta"></span></h2>
      <div class="row">
        <vscode-textfield id="objects-query" placeholder="cat; dog"></vscode-textfield>
        <vscode-button id="detect">Detect…</vscode-button>
        <vscode-button id="segment" secondary>Segment…</vscode-button>
      </div>
      <p id="objects-summary" class="meta"></p>
      <ul id="objects"></ul>
    </section>
    <section>
      <h2>Ask</h2>
      <div class="row">
        <vscode-textfield id="question" placeholder="Ask a question about the image"></vscode-textfield>
        <vscode-button id="ask">Ask</vscode-button>
      </div>
      <ul id="answers"></ul>
      <div id="answer-partial"></div>
    </section>
  </div>
</div>
<script nonce="${nonce}" src="${escapeAttr(options.scriptUri)}"></script>
</body>
</html>`;
}
