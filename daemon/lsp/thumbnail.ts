// The hover's thumbnail, as Markdown, for clients that render Markdown images (VS Code).
//
// Markdown image syntax, not an HTML <img>: VS Code maps the URIs of Markdown links and images (the
// MarkdownString's `uris`, collected in the extension host) to something the workbench can load
// (vscode-file: on desktop, the remote resource URL in a remote window or code-server), but leaves a
// raw HTML src as it is; a file: src then fails to load in any remote or web window. `|width=N` is
// VS Code's own size suffix for Markdown images, as in its built-in Markdown image hover.

/** `![](uri|width=N)`, the destination in angle brackets when a bare one would not parse as one. */
export function thumbnailMarkdown(uri: string, width: number): string {
  const destination = `${uri}|width=${Math.round(width)}`;
  return `![](${/[\s()<>\\]/.test(destination) ? `<${destination.replace(/[\\<>]/g, '\\$&')}>` : destination})`;
}
