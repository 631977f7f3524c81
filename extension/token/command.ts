// "PaliGemma: Set Hugging Face Token" (into SecretStorage) and the one-time move of a token left in
// the old plain-text setting (hfToken.ts has the logic).
import * as vscode from 'vscode';
import type { Ctx } from '../ctx.js';
import { LEGACY_SETTING, migrateLegacyToken, SECRET_KEY, validateToken, type LegacySetting } from './hfToken.js';
import { errorMessage } from '../../daemon/client/shared.js';

export function registerTokenCommands(ctx: Ctx): void {
  ctx.registerCommand('paligemma.setHuggingFaceToken', async (): Promise<boolean> => {
    const token = await vscode.window.showInputBox({
      title: 'Hugging Face access token',
      prompt: "Gated models (google/paligemma…) need one, after accepting the license on the model page. Stored in VS Code's secret storage; $HF_TOKEN, when set, is used instead.",
      placeHolder: 'hf_…',
      password: true,
      ignoreFocusOut: true,
      validateInput: validateToken,
    });
    if (!token) return false;
    await ctx.extension.secrets.store(SECRET_KEY, token.trim());
    void vscode.window.showInformationMessage("PaliGemma: the Hugging Face token is stored in VS Code's secret storage.");
    return true;
  });
}

/** Moves a token found in settings into SecretStorage and says so once; errors only reach the log. */
export async function migrateTokenSetting(ctx: Ctx): Promise<void> {
  const config = () => vscode.workspace.getConfiguration('paligemma');
  const legacy: LegacySetting = {
    values() {
      const i = config().inspect<string>(LEGACY_SETTING);
      return [i?.globalValue, i?.workspaceValue].filter((v): v is string => typeof v === 'string');
    },
    async clear() {
      const i = config().inspect<string>(LEGACY_SETTING);
      if (i?.globalValue !== undefined) await config().update(LEGACY_SETTING, undefined, vscode.ConfigurationTarget.Global);
      if (i?.workspaceValue !== undefined) await config().update(LEGACY_SETTING, undefined, vscode.ConfigurationTarget.Workspace);
    },
  };
  try {
    const result = await migrateLegacyToken(ctx.extension.secrets, legacy);
    if (result.kind === 'none') return;
    ctx.log.info(`Hugging Face token: ${result.kind === 'moved' ? 'moved from settings to SecretStorage' : 'removed from settings (SecretStorage holds another one, kept)'}`);
    void vscode.window.showInformationMessage(
      result.kind === 'moved'
        ? "PaliGemma: your Hugging Face token was moved from settings.json to VS Code's secret storage; settings no longer hold it."
        : "PaliGemma: the Hugging Face token in settings.json was removed; the one in VS Code's secret storage is used.",
    );
  } catch (err) {
    ctx.log.error(`moving the Hugging Face token to SecretStorage: ${errorMessage(err)}`);
  }
}
