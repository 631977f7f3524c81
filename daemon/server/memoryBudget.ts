// Admission against a memory budget: each request reserves the bytes it will hold (its file's
// bytes and its decoded pixels, measured from the image header) from admission until its answer,
// and one that does not fit while others hold the budget is refused as Busy. The per-image limits
// bound one image; this bounds the sum, which many large-decoding images at once otherwise are not.
import { busy } from './errors.js';

export const DEFAULT_MEMORY_BUDGET_BYTES = 1024 * 1024 * 1024;

export class MemoryBudget {
  private used = 0;
  private admitted = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  /**
   * Reserves `bytes` for `what` and returns the release (idempotent). A request alone is always
   * admitted (its image is within the per-image limits), so a budget below one image cannot
   * stall the daemon.
   */
  admit(bytes: number, what: string): () => void {
    if (this.admitted > 0 && this.used + bytes > this.limit) {
      throw busy(
        `the daemon is busy: the images it is working on hold ${mib(this.used)} of its ${mib(this.limit)} memory budget, ` +
          `and ${what} needs ${mib(bytes)} more; try again when the current requests are done`,
      );
    }
    this.used += bytes;
    this.admitted++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.admitted--;
    };
  }
}

function mib(n: number): string {
  return `${Math.ceil(n / (1024 * 1024))} MiB`;
}
