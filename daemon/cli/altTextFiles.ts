// The documents `paligemma alt-text` works on: files named on the command line, folders walked for
// docs extensions, and globs; node_modules, .git and what .gitignore ignores are skipped (the
// .gitignore files from the repository root down, as git reads them).
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import picomatch from 'picomatch';
import { UsageError } from './args.js';

export const DEFAULT_EXTENSIONS = ['md', 'markdown', 'mdx', 'html', 'htm', 'jsx', 'tsx'];
const ALWAYS_SKIPPED = new Set(['node_modules', '.git']);

interface IgnoreRules {
  base: string;
  rules: Ignore;
}

/** Absolute paths of the documents to check, sorted, each once. */
export async function collectDocuments(args: readonly string[], extensions: readonly string[], cwd = process.cwd()): Promise<string[]> {
  const exts = new Set(extensions.map((e) => e.replace(/^\./, '').toLowerCase()));
  const hasExt = (p: string) => exts.has(p.slice(p.lastIndexOf('.') + 1).toLowerCase());
  const found = new Set<string>();
  for (const arg of args) {
    const path = resolve(cwd, arg);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile()) {
      found.add(path);
    } else if (st?.isDirectory()) {
      for (const f of await walk(path)) if (hasExt(f)) found.add(f);
    } else if (picomatch.scan(arg).isGlob) {
      const { base } = picomatch.scan(arg);
      const root = resolve(cwd, base || '.');
      const matches = picomatch(arg.replace(/\\/g, '/'), { dot: false });
      const before = found.size;
      if (existsSync(root)) {
        for (const f of await walk(root)) if (hasExt(f) && matches(relative(cwd, f).split(sep).join('/'))) found.add(f);
      }
      if (found.size === before) throw new UsageError(`no file matches ${arg}`);
    } else {
      throw new UsageError(`no such file or folder: ${arg}`);
    }
  }
  return [...found].sort();
}

async function walk(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (dir: string, rules: IgnoreRules[]): Promise<void> => {
    const here = await gitignoreAt(dir);
    const active = here ? [...rules, here] : rules;
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (ALWAYS_SKIPPED.has(e.name)) continue;
      const path = join(dir, e.name);
      const isDir = e.isDirectory();
      if (isIgnored(path, isDir, active)) continue;
      if (isDir) await visit(path, active);
      else if (e.isFile()) out.push(path);
    }
  };
  await visit(root, await ancestorRules(root));
  return out;
}

function isIgnored(path: string, isDir: boolean, rules: IgnoreRules[]): boolean {
  return rules.some(({ base, rules: ig }) => {
    const rel = relative(base, path).split(sep).join('/');
    return rel !== '' && !rel.startsWith('..') && ig.ignores(isDir ? `${rel}/` : rel);
  });
}

async function gitignoreAt(dir: string): Promise<IgnoreRules | undefined> {
  const text = await readFile(join(dir, '.gitignore'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : { base: dir, rules: ignore().add(text) };
}

/** The .gitignore files above `root` up to its repository's root (none outside a repository). */
async function ancestorRules(root: string): Promise<IgnoreRules[]> {
  const above: string[] = [];
  for (let dir = root; !existsSync(join(dir, '.git'));) {
    const parent = dirname(dir);
    if (parent === dir) return [];
    above.unshift(parent);
    dir = parent;
  }
  const rules: IgnoreRules[] = [];
  for (const dir of above) {
    const r = await gitignoreAt(dir);
    if (r) rules.push(r);
  }
  return rules;
}
