// Types of bench/compare-table.mjs (plain JS so that it runs on the GPU machine without a build),
// for the TypeScript tests.
export type Row = Record<string, unknown>;

export interface Line {
  side: 'hf' | 'ours';
  preset: string;
  imageSize?: number;
  architecture?: string;
  layers?: number;
  command?: string;
  error?: string;
  raw: Row;
  config: string;
  weights: string;
  attention?: string;
  ep?: string;
  dtype?: string;
  decodeLoop?: string;
  newTokens?: number;
  batch?: number;
  firstTokenMs?: number;
  decodeMsPerToken?: number;
  endToEndMs?: number;
  imagesPerSecond?: number;
}

export interface Group {
  key: string;
  preset: string;
  imageSize?: number;
  architecture?: string;
  layers?: number;
  lines: Line[];
  failed: Line[];
  hf: Line[];
  ours: Line[];
  sdpa?: Line;
  newTokens?: number;
  batch?: number;
  promptTokens?: number;
}

export function parseJsonl(text: string): Row[];
export function normalizeRow(row: Row, side: 'hf' | 'ours'): Line;
export function groupRows(hfRows: Row[], oursRows: Row[]): Group[];
export function formatNumber(v: number | undefined): string;
export function formatRatio(r: number | undefined): string;
export function ratios(line: Line, sdpa: Line | undefined): { speedUp?: number; throughput?: number };
export function renderMarkdown(groups: Group[], options?: { date?: string; machine?: string; sources?: { hf?: string[]; ours?: string[] } }): string;
export function main(argv?: string[]): number;
