// Where a pasted or dropped image is saved, the way VS Code's built-in Markdown paste does it:
// `markdown.copyFiles.destination` maps document globs to a destination with ${...} variables
// (a leading `/` is the workspace folder, a trailing `/` adds the file name; default: next to the
// document), and `markdown.copyFiles.overwriteBehavior` either overwrites or numbers the name
// (image.png, image-1.png, ...). Posix paths (URI paths); no vscode here.
import { posix } from 'node:path';
import picomatch from 'picomatch';

export interface DestinationInput {
  /** The document's URI path. */
  documentPath: string;
  /** Its workspace folder's URI path, when it has one. */
  workspaceFolderPath?: string;
  /** All workspace folders' paths (globs starting with `/` are anchored to each). */
  workspaceFolderPaths: string[];
  /** The pasted file's name (image.png for a clipboard image). */
  fileName: string;
  /** markdown.copyFiles.destination */
  destinations: Record<string, string>;
}

/** The path the image should get, before numbering. */
export function desiredPath(i: DestinationInput): string {
  for (const [glob, dest] of Object.entries(i.destinations)) {
    const globs = glob.startsWith('/') ? i.workspaceFolderPaths.map((f) => posix.join(f, glob)) : [glob.startsWith('**') ? glob : `**/${glob}`];
    if (globs.some((g) => picomatch.isMatch(i.documentPath, g, { dot: true }))) return resolveDestination(i, dest);
  }
  return posix.join(posix.dirname(i.documentPath), i.fileName);
}

function resolveDestination(i: DestinationInput, raw: string): string {
  let dest = raw.trim() || '${fileName}';
  if (dest.startsWith('/')) dest = `\${documentWorkspaceFolder}/${dest.slice(1)}`;
  if (dest.endsWith('/')) dest += '${fileName}';
  const docDir = posix.dirname(i.documentPath);
  const docFile = posix.basename(i.documentPath);
  const docExt = posix.extname(docFile);
  const root = i.workspaceFolderPath ?? docDir;
  const fileExt = posix.extname(i.fileName);
  const vars: Record<string, string> = {
    documentDirName: docDir,
    documentRelativeDirName: posix.relative(root, docDir),
    documentFileName: docFile,
    documentBaseName: docFile.slice(0, docFile.length - docExt.length),
    documentExtName: docExt.replace('.', ''),
    documentFilePath: i.documentPath,
    documentRelativeFilePath: posix.relative(root, i.documentPath),
    documentWorkspaceFolder: root,
    fileName: i.fileName,
    fileExtName: fileExt.replace('.', ''),
  };
  // ${name} or ${name/regex/replacement/}; unknown names resolve to nothing, as in VS Code.
  const resolved = dest.replace(/\$\{(\w+)(?:\/([^}]+?)\/([^}]*?)\/)?\}/g, (_, name: string, pattern?: string, replacement?: string) => {
    const value = vars[name] ?? '';
    return pattern ? value.replace(new RegExp(pattern), replacement ?? '') : value;
  });
  return posix.normalize(resolved.startsWith('/') ? resolved : posix.join(docDir, resolved));
}

/** `image.png`, then `image-1.png`, `image-2.png`... until `taken` says no. */
export async function numberedPath(path: string, taken: (path: string) => Promise<boolean>, overwrite: boolean): Promise<string> {
  if (overwrite) return path;
  const dir = posix.dirname(path);
  const ext = posix.extname(path);
  const base = posix.basename(path, ext);
  for (let n = 0; ; n++) {
    const candidate = posix.join(dir, `${n === 0 ? base : `${base}-${n}`}${ext}`);
    if (!(await taken(candidate))) return candidate;
  }
}

/** The link text from the document to the image: relative, with what a Markdown or HTML link cannot hold escaped. */
export function linkPath(documentPath: string, imagePath: string): string {
  const rel = posix.relative(posix.dirname(documentPath), imagePath);
  return rel
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/%40/g, '@').replace(/\(/g, '%28').replace(/\)/g, '%29'))
    .join('/');
}

/** The file name a pasted image gets when the data transfer names none: image.<ext of its type>. */
export function pastedFileName(name: string | undefined, mimeType: string): string {
  const clean = name?.trim().replace(/[\\/:*?"<>|]/g, '-');
  if (clean) return clean;
  const ext = { 'image/jpeg': 'jpg', 'image/svg+xml': 'svg', 'image/x-icon': 'ico' }[mimeType] ?? mimeType.replace(/^image\//, '');
  return `image.${ext || 'png'}`;
}
