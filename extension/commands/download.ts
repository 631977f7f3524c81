// Download Model from Hugging Face: runs `paligemma download <repo> --json --models-dir <dir>`
// (the daemon program's CLI, daemon/cli/download.ts) through cliTask.ts, follows its JSON lines in
// the notification, and offers the installed folder as the model. The token (setting
// paligemma.huggingFaceToken, else $HF_TOKEN) reaches the child only through its environment.
import * as vscode from 'vscode';
import type { DownloadResult } from '../../daemon/protocol.js';
import { describeDownload, parseDownloadLine, type DownloadFailureInfo } from '../cli/progress.js';
import type { Ctx } from '../ctx.js';
import { runCliTask } from './cliTask.js';
import { modelsDir, setModel } from './model.js';

interface VariantPick extends vscode.QuickPickItem {
  args?: string[];
}

const ONNX_VARIANTS: VariantPick[] = [
  { label: '', kind: vscode.QuickPickItemKind.Separator, description: 'ONNX exports (onnx-community/…)' },
  { label: 'q4f16', description: 'ONNX variant: 4-bit weights, fp16 activations; smallest', args: ['--variant', 'q4f16'] },
  { label: 'fp16', description: 'ONNX variant: half precision', args: ['--variant', 'fp16'] },
  { label: 'q4', description: 'ONNX variant: 4-bit weights', args: ['--variant', 'q4'] },
  { label: 'quantized', description: 'ONNX variant: 8-bit weights', args: ['--variant', 'quantized'] },
  { label: 'fp32', description: 'ONNX variant: full precision; largest', args: ['--variant', 'fp32'] },
];
const CHECKPOINT_DTYPES: VariantPick[] = [
  { label: '', kind: vscode.QuickPickItemKind.Separator, description: 'checkpoints (google/paligemma…), converted after the download' },
  { label: 'int4', description: 'convert to 4-bit weights: smallest and fastest', args: ['--dtype', 'int4'] },
  { label: 'int4-cpu', description: 'convert to 4-bit weights with int8 compute: about 4x faster decoding on CPUs', args: ['--dtype', 'int4-cpu'] },
  { label: 'fp16', description: 'convert to half precision (GPU)', args: ['--dtype', 'fp16'] },
  { label: 'fp32', description: 'convert at full precision: reference accuracy; largest', args: ['--dtype', 'fp32'] },
];

export function registerDownloadCommand(ctx: Ctx): void {
  ctx.registerCommand('paligemma.downloadModel', async (arg) => {
    const repo = (
      typeof arg === 'string'
        ? arg
        : await vscode.window.showInputBox({
            title: 'Download a PaliGemma model from Hugging Face',
            prompt: 'Model id (owner/name). Gated models (google/paligemma…) need a token and an accepted license.',
            placeHolder: 'onnx-community/paligemma2-3b-pt-224 or google/paligemma-3b-mix-224',
            ignoreFocusOut: true,
            validateInput: (v) => (v.trim() ? undefined : 'A Hugging Face model id, e.g. onnx-community/paligemma2-3b-pt-224'),
          })
    )?.trim();
    if (!repo) return;
    await download(ctx, repo);
  });
}

async function download(ctx: Ctx, repo: string, chosen?: VariantPick): Promise<void> {
  const variant = chosen ?? (await pickVariant(repo));
  if (!variant) return;
  const dir = modelsDir();
  let result: DownloadResult | undefined;
  let failure: DownloadFailureInfo | undefined;
  const exit = await runCliTask(ctx, {
    title: `Downloading ${repo}`,
    args: ['download', repo, '--json', '--models-dir', dir, ...(variant.args ?? [])],
    hfToken: huggingFaceToken(),
    // The CLI stops at SIGINT with a clean "cancelled" and keeps its partial files for a resume.
    killSignal: 'SIGINT',
    onLine(line, stream) {
      const event = stream === 'stdout' ? parseDownloadLine(line) : undefined;
      if (event?.kind === 'progress') return describeDownload(event.progress);
      if (event?.kind === 'result') result = event.result;
      if (event?.kind === 'error') failure = event.error;
      return undefined;
    },
  });
  if (!exit || exit.cancelled || failure?.reason === 'cancelled') return;
  if (exit.code === 0 && result) return void (await offerModel(ctx, result));
  if (failure) return void (await showFailure(ctx, repo, variant, failure));
  const last = exit.stderrTail.at(-1) ?? '';
  const choice = await vscode.window.showErrorMessage(`PaliGemma: the download failed (${exit.signal ?? `exit code ${exit.code}`}): ${last}`, 'Show Logs');
  if (choice) ctx.log.show();
}

function pickVariant(repo: string): Thenable<VariantPick | undefined> {
  const onnxFirst = repo.toLowerCase().startsWith('onnx-community/') || repo.toLowerCase().includes('onnx');
  const automatic: VariantPick = { label: 'Automatic', description: "the export's only variant, or a checkpoint converted at fp32" };
  return vscode.window.showQuickPick([automatic, ...(onnxFirst ? [...ONNX_VARIANTS, ...CHECKPOINT_DTYPES] : [...CHECKPOINT_DTYPES, ...ONNX_VARIANTS])], {
    title: `${repo}: which weights`,
    placeHolder: 'ONNX exports come in variants; checkpoints are converted after the download',
    ignoreFocusOut: true,
  });
}

function huggingFaceToken(): string | undefined {
  return vscode.workspace.getConfiguration('paligemma').get<string>('huggingFaceToken', '').trim() || process.env.HF_TOKEN || undefined;
}

async function offerModel(ctx: Ctx, r: DownloadResult): Promise<void> {
  if (r.pending === 'convert') {
    void vscode.window.showWarningMessage(`PaliGemma: ${r.repo} was downloaded to ${r.path} but still has to be converted (PaliGemma: Convert Hugging Face Checkpoint…).`);
    return;
  }
  const what = r.alreadyInstalled ? `${r.repo} is already installed` : `downloaded ${r.repo}`;
  const choice = await vscode.window.showInformationMessage(`PaliGemma: ${what} (${r.path}).`, 'Use This Model');
  if (choice) await setModel(ctx, r.path);
}

/** The CLI's message as it is (it says what to do), with the buttons that do it. */
async function showFailure(ctx: Ctx, repo: string, variant: VariantPick, f: DownloadFailureInfo): Promise<void> {
  const actions: string[] = [];
  if (f.reason === 'unauthorized' || f.reason === 'gated') actions.push('Open Model Page', 'Set Token…');
  if (f.reason === 'no-variant') actions.push('Choose Again…');
  if (f.reason === 'network') actions.push('Retry');
  actions.push('Show Logs');
  const choice = await vscode.window.showErrorMessage(`PaliGemma: ${f.message}`, ...actions);
  if (choice === 'Open Model Page') await vscode.env.openExternal(vscode.Uri.parse(`https://huggingface.co/${repo}`));
  else if (choice === 'Set Token…') await vscode.commands.executeCommand('workbench.action.openSettings', 'paligemma.huggingFaceToken');
  else if (choice === 'Choose Again…') await download(ctx, repo);
  else if (choice === 'Retry') await download(ctx, repo, variant); // resumes from the partial files
  else if (choice === 'Show Logs') ctx.log.show();
}
