// When the language server process dies: restart it, but not forever (vscode-eslint's and
// rust-analyzer's rule: a handful of crashes in a few minutes means it will crash again).
// vscode-free, so it is unit-tested.

export const MAX_RESTARTS = 4;
export const RESTART_WINDOW_MS = 3 * 60_000;

export class RestartBudget {
  private readonly crashes: number[] = [];

  constructor(
    private readonly max = MAX_RESTARTS,
    private readonly windowMs = RESTART_WINDOW_MS,
  ) {}

  /** A crash at `now`: whether to restart (at most `max` restarts within the window). */
  crashed(now = Date.now()): boolean {
    this.crashes.push(now);
    while (this.crashes.length && this.crashes[0] <= now - this.windowMs) this.crashes.shift();
    return this.crashes.length <= this.max;
  }

  /** A restart by the user starts over. */
  reset(): void {
    this.crashes.length = 0;
  }
}
