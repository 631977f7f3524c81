// The Hugging Face token: kept in VS Code's SecretStorage, never in settings. A token left in the
// old plain-text setting (paligemma.huggingFaceToken) is moved into SecretStorage and removed from
// settings the first time the extension sees it. No vscode here: the stores are passed in.

export const SECRET_KEY = 'paligemma.huggingFaceToken';
export const LEGACY_SETTING = 'huggingFaceToken';

export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
}

/** The legacy setting in every settings file it can be in (User, Remote, Workspace, Folder). */
export interface LegacySetting {
  /** The values set, one per scope where it is set (empty strings excluded by the caller or here). */
  values(): string[];
  /** Removes it from every scope. */
  clear(): PromiseLike<void>;
}

export type Migration =
  /** Nothing in settings. */
  | { kind: 'none' }
  /** The token moved to SecretStorage. */
  | { kind: 'moved' }
  /** SecretStorage had a (different) token already: it is kept, the plain one removed. */
  | { kind: 'removed'; kept: 'secret' };

export async function migrateLegacyToken(secrets: SecretStore, legacy: LegacySetting): Promise<Migration> {
  const plain = legacy
    .values()
    .map((v) => v.trim())
    .find((v) => v !== '');
  if (plain === undefined) {
    // An empty string left behind is removed too, silently.
    if (legacy.values().length) await legacy.clear();
    return { kind: 'none' };
  }
  const stored = (await secrets.get(SECRET_KEY))?.trim();
  if (stored && stored !== plain) {
    await legacy.clear();
    return { kind: 'removed', kept: 'secret' };
  }
  if (!stored) await secrets.store(SECRET_KEY, plain);
  await legacy.clear();
  return { kind: 'moved' };
}

/** $HF_TOKEN wins when it is set, as it does for the `paligemma` CLI; else the stored token. */
export function effectiveToken(env: NodeJS.ProcessEnv, stored: string | undefined): string | undefined {
  return env.HF_TOKEN?.trim() || stored?.trim() || undefined;
}

/** A plausible token: `hf_` and at least a few more characters, no spaces. */
export function validateToken(value: string): string | undefined {
  const v = value.trim();
  if (!v) return 'Paste a token from huggingface.co/settings/tokens';
  if (/\s/.test(v)) return 'A token has no spaces';
  if (!/^hf_[A-Za-z0-9]{8,}$/.test(v)) return 'Hugging Face tokens start with hf_ followed by letters and digits';
  return undefined;
}
