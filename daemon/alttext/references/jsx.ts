// <img> / <Image> elements in JSX and TSX, located with @babel/parser. `src={logo}` is followed to
// `import logo from './logo.png'` so that bundler-style imports still name the image.
import { parse } from '@babel/parser';
import type { ParserPlugin } from '@babel/parser';
import { JSX_IMAGE_ELEMENTS, isDecorativeMarkup } from './attributes.js';
import type { ImageReference, Span } from './types.js';

export interface JsxParseOptions {
  typescript?: boolean;
}

// Babel's AST is walked structurally: only the handful of node shapes read here are typed.
interface BabelNode {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}
interface StringLiteral extends BabelNode {
  type: 'StringLiteral';
  value: string;
}

export function parseJsxImages(text: string, options: JsxParseOptions = {}): ImageReference[] {
  const plugins: ParserPlugin[] = options.typescript ? ['jsx', 'typescript', 'decorators-legacy'] : ['jsx'];
  const ast = parse(text, {
    sourceType: 'module',
    plugins,
    errorRecovery: true,
    allowImportExportEverywhere: true,
    allowAwaitOutsideFunction: true,
    allowReturnOutsideFunction: true,
    allowUndeclaredExports: true,
  });
  const imports = new Map<string, StringLiteral>();
  for (const statement of ast.program.body as unknown as BabelNode[]) {
    if (statement.type !== 'ImportDeclaration') continue;
    for (const spec of statement.specifiers as BabelNode[]) {
      if (spec.type === 'ImportDefaultSpecifier') imports.set((spec.local as { name: string }).name, statement.source as StringLiteral);
    }
  }
  const found: ImageReference[] = [];
  walk(ast.program as unknown as BabelNode, (node) => {
    if (node.type !== 'JSXOpeningElement') return;
    const name = node.name as BabelNode & { name?: string };
    if (name.type !== 'JSXIdentifier' || !JSX_IMAGE_ELEMENTS.has(name.name!)) return;
    const image = imageFromElement(node, text, imports);
    if (image) found.push(image);
  });
  return found;
}

function imageFromElement(el: BabelNode, text: string, imports: Map<string, StringLiteral>): ImageReference | undefined {
  const attributes = el.attributes as BabelNode[];
  const named = attributes.filter((a) => a.type === 'JSXAttribute' && (a.name as BabelNode).type === 'JSXIdentifier');
  const find = (n: string) => named.find((a) => (a.name as { name: string }).name === n);
  const hasSpread = attributes.some((a) => a.type === 'JSXSpreadAttribute');

  const srcAttr = find('src');
  if (!srcAttr) return undefined;
  const src = readSrc(srcAttr.value as BabelNode | null, imports);
  const altAttr = find('alt');
  const altValue = altAttr ? (altAttr.value as BabelNode | null) : undefined;
  // `<img alt />` is `alt={true}` to React, which renders an empty alt: read it as a valueless attribute.
  const alt = altAttr ? (altValue === null ? '' : staticValue(altValue ?? null)) : undefined;
  const quote = altValue?.type === 'StringLiteral' ? (text[altValue.start] as '"' | "'") : '';
  const last = attributes[attributes.length - 1];
  return {
    syntax: 'jsx',
    src: src?.value ?? '',
    srcSpan: src?.span ?? span(srcAttr),
    span: span(el),
    alt: {
      dialect: 'jsx',
      value: altAttr === undefined ? undefined : alt,
      dynamic: (altAttr !== undefined && alt === undefined) || (altAttr === undefined && hasSpread),
      valueSpan: quote && altValue ? { start: altValue.start + 1, end: altValue.end - 1 } : undefined,
      quote,
      attributeSpan: altAttr ? span(altAttr) : undefined,
      valueless: altAttr !== undefined && altValue === null,
      insertAt: last.end,
      decorative: isDecorativeMarkup(staticValue(attrValue(find('role'))), ariaHidden(find('aria-hidden'))),
    },
  };
}

function attrValue(attr: BabelNode | undefined): BabelNode | null {
  return attr ? ((attr.value as BabelNode | null) ?? null) : null;
}

function ariaHidden(attr: BabelNode | undefined): string | boolean | undefined {
  if (!attr) return undefined;
  const value = attr.value as BabelNode | null;
  if (value === null) return true;
  if (value.type === 'JSXExpressionContainer' && (value.expression as BabelNode).type === 'BooleanLiteral') {
    return (value.expression as unknown as { value: boolean }).value;
  }
  return staticValue(value);
}

/** The string an attribute value always has: "x", {"x"}, {`x`}; undefined when computed. */
function staticValue(value: BabelNode | null): string | undefined {
  if (value === null) return undefined;
  if (value.type === 'StringLiteral') return (value as StringLiteral).value;
  if (value.type !== 'JSXExpressionContainer') return undefined;
  const expr = value.expression as BabelNode;
  if (expr.type === 'StringLiteral') return (expr as StringLiteral).value;
  if (expr.type === 'TemplateLiteral' && (expr.expressions as unknown[]).length === 0) {
    const [quasi] = expr.quasis as { value: { cooked: string | null } }[];
    return quasi.value.cooked ?? undefined;
  }
  return undefined;
}

function readSrc(value: BabelNode | null, imports: Map<string, StringLiteral>): { value: string; span: Span } | undefined {
  if (value === null) return undefined;
  if (value.type === 'StringLiteral') return { value: (value as StringLiteral).value, span: { start: value.start + 1, end: value.end - 1 } };
  if (value.type !== 'JSXExpressionContainer') return undefined;
  const expr = value.expression as BabelNode;
  if (expr.type === 'StringLiteral') return { value: (expr as StringLiteral).value, span: { start: expr.start + 1, end: expr.end - 1 } };
  if (expr.type === 'Identifier') {
    const source = imports.get((expr as unknown as { name: string }).name);
    if (source) return { value: source.value, span: { start: source.start + 1, end: source.end - 1 } };
  }
  return undefined;
}

function span(node: BabelNode): Span {
  return { start: node.start, end: node.end };
}

const SKIP = new Set(['loc', 'extra', 'leadingComments', 'trailingComments', 'innerComments']);
function walk(node: BabelNode, visit: (node: BabelNode) => void): void {
  visit(node);
  for (const key in node) {
    if (SKIP.has(key)) continue;
    const child = node[key];
    if (Array.isArray(child)) {
      for (const c of child) if (c && typeof c === 'object' && typeof (c as BabelNode).type === 'string') walk(c as BabelNode, visit);
    } else if (child && typeof child === 'object' && typeof (child as BabelNode).type === 'string') {
      walk(child as BabelNode, visit);
    }
  }
}
