// Defaults shared by `paligemma serve` and its clients.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** $PALIGEMMA_MODEL, else $XDG_DATA_HOME/paligemma/models/default when it exists. */
export function defaultModelPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.PALIGEMMA_MODEL) return env.PALIGEMMA_MODEL;
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  const dir = join(data, 'paligemma', 'models', 'default');
  return existsSync(dir) ? dir : undefined;
}

export const DEFAULT_IDLE_EXIT_MS = 5 * 60_000;
export const DEFAULT_KEEP_ALIVE_MS = 5 * 60_000;
