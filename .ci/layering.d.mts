// Types of .ci/layering.mjs (plain JS so that ESLint loads it without a build), for the tests.
export interface Layer {
  /** A folder (ending in `/`) or a file, relative to the repository root. */
  path: string;
  why: string;
  mayImport: string[];
  /** Whether `vscode` may be imported. */
  vscode?: boolean;
  /** False: no package or Node built-in either. */
  packages?: boolean;
}
export const LAYERS: Layer[];
export const LAYERED_ROOTS: string[];
export function layerOf(file: string): Layer | undefined;
export function covers(entry: string, file: string): boolean;
export function forbiddenEdge(from: string, to: string): string | undefined;
export function forbiddenModule(from: string, name: string): string | undefined;
