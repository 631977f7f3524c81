// Which language a document is read as. Editors name languages differently (VS Code
// `typescriptreact`, Helix `tsx`, Neovim `markdown.mdx`), and stock VS Code reports `.mdx` as plain
// text: an id the docs core does not know falls back to the file extension, as the core does.
import { parserFor, type ImageParser } from '../alttext/references/index.js';

/** The language id (as in `altText.fileTypes`) of each parser. */
const LANGUAGE_OF: Record<ImageParser, string> = {
  markdown: 'markdown',
  mdx: 'mdx',
  html: 'html',
  jsx: 'javascriptreact',
  tsx: 'typescriptreact',
  css: 'css',
};

export function documentLanguage(uri: string, languageId: string): string {
  if (parserFor(languageId)) return languageId;
  const byExtension = parserFor(undefined, pathOf(uri));
  return byExtension ? LANGUAGE_OF[byExtension] : languageId;
}

function pathOf(uri: string): string {
  try {
    return new URL(uri).pathname;
  } catch {
    return uri;
  }
}
