// Which documents the server reads, and as what. Editors name languages differently (VS Code
// `typescriptreact`, Helix `tsx`, Neovim `markdown.mdx`), and stock VS Code reports `.mdx` as
// plain text, so the file extension decides when the language id does not.
import { posix } from 'node:path';
import { parserFor } from '../alttext/references/index.js';

/** The language ids the alt-text checks know, by file extension. */
const BY_EXTENSION: Record<string, string> = {
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.mdx': 'mdx',
  '.html': 'html',
  '.htm': 'html',
  '.jsx': 'javascriptreact',
  '.tsx': 'typescriptreact',
};

/** Other editors' names for the same languages. */
const ALIASES: Record<string, string> = {
  jsx: 'javascriptreact',
  tsx: 'typescriptreact',
  'markdown.mdx': 'mdx',
};

/**
 * The language id the docs core reads a document as: the file extension first when it names one
 * of the alt-text languages (so `.mdx` is MDX whatever the editor calls it), then the editor's id.
 */
export function documentLanguage(uri: string, languageId: string): string {
  const byExtension = BY_EXTENSION[posix.extname(pathOf(uri)).toLowerCase()];
  if (byExtension) return byExtension;
  const id = ALIASES[languageId] ?? languageId;
  return parserFor(id) ? id : languageId;
}

function pathOf(uri: string): string {
  try {
    return new URL(uri).pathname;
  } catch {
    return uri;
  }
}
