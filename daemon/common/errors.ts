// See format.ts: importable from every layer, no imports of its own.

/** The message of a thrown value: an Error's message, anything else as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
