// Helpers every daemon-side layer may import (engine, server, client, CLI, LSP), and the extension
// through daemon/client/shared.ts: plain functions with no imports, so they run anywhere.

/** A size for people, in decimal units as the Hugging Face Hub and disk tools show them: `1.20 GB`. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
