// Image references found in source text. Everything here is vscode-free and works on UTF-16 offsets
// into the document text (the same unit as TextDocument.positionAt), end exclusive.

export interface Span {
  start: number;
  end: number;
}

/** How an image is written; decides how its alt text is read, escaped and edited. */
export type ImageSyntax =
  | 'markdown-inline' // ![alt](src)
  | 'markdown-reference' // ![alt][label], ![alt][], ![alt]
  | 'markdown-definition' // [label]: src   (hover only)
  | 'html' // <img src alt>, in HTML files and HTML inside Markdown
  | 'jsx' // <img src alt /> in JSX / TSX
  | 'mdx-jsx' // <img src alt /> in MDX
  | 'css' // url(src)
  | 'path'; // a bare relative path in any file

/** The context an alt text is written in, which decides its escaping. */
export type AltDialect = 'markdown' | 'mdx' | 'html' | 'jsx';

/** Where and how an image's alt text is written (absent for syntaxes without alt text). */
export interface AltSite {
  dialect: AltDialect;
  /** The decoded alt text; undefined when the attribute is missing. */
  value: string | undefined;
  /** The alt text is computed (a JSX expression, or hidden behind a spread) and cannot be judged. */
  dynamic: boolean;
  /** Quoted attribute value / Markdown label text, without quotes or brackets. */
  valueSpan?: Span;
  /** Quote around an attribute value; '' when the value is unquoted or the attribute has no value. */
  quote?: '"' | "'" | '';
  /** The whole `alt=...` attribute, when present. */
  attributeSpan?: Span;
  /** `<img alt>`: the attribute is there without a value (read as empty, but not as "decorative"). */
  valueless?: boolean;
  /** Where a new attribute goes (right after the last attribute of the start tag). */
  insertAt: number;
  /** Marked decorative: role="presentation"/"none" or aria-hidden="true", or the Markdown comment marker. */
  decorative: boolean;
  /** For `![alt][]` and `![alt]` the label is also the reference: changing the alt must keep the label. */
  reference?: { type: 'collapsed' | 'shortcut'; rawLabel: string };
}

export interface ImageReference {
  syntax: ImageSyntax;
  /**
   * The image location as the author wrote it, decoded (escapes, character references); '' when it is
   * computed (`src={url}` in JSX) and cannot be read — the alt text is still checked.
   */
  src: string;
  /** Where the location is written; edits never touch it. */
  srcSpan: Span;
  /** The whole image syntax (the hover range). */
  span: Span;
  alt?: AltSite;
}

/** A text edit on offsets of the text it was computed from. */
export interface OffsetEdit {
  start: number;
  end: number;
  newText: string;
}
