// Download Model from Hugging Face: a pick of the PaliGemma checkpoints (modelCatalog.ts) or any
// model id, then `paligemma download <repo> --json --models-dir <dir>` (the daemon program's CLI,
// daemon/cli/download.ts) through cliTask.ts, its JSON lines followed in the notification, and the
// installed folder offered as the model. The token ($HF_TOKEN, else the one in SecretStorage)
// reaches the child only through its environment.
import * as vscode from 'vscode';
import type { DownloadResult } from '../../daemon/protocol.js';
import { describeDownload, parseDownloadLine, type DownloadFailureInfo } from '../cli/progress.js';
import type { Ctx } from '../ctx.js';
import { CATALOG, CPU_FORMAT_NOTES, describeEntry, detectHardware, suggestedDtype } from '../modelCatalog.js';
import { effectiveToken, SECRET_KEY } from '../token/hfToken.js';
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
  {
    label: 'int4-cpu-v8',
    description: CPU_FORMAT_NOTES['int4-cpu-v8'],
    args: ['--dtype', 'int4-cpu-v8'],
  },
  {
    label: 'int8',
    description: CPU_FORMAT_NOTES.int8,
    args: ['--dtype', 'int8'],
  },
  { label: 'fp16', description: 'convert to half precision (GPU)', args: ['--dtype', 'fp16'] },
  { label: 'fp32', description: 'convert at full precision: reference accuracy; largest', args: ['--dtype', 'fp32'] },
];

export function registerDownloadCommand(ctx: Ctx): void {
  ctx.registerCommand('paligemma.downloadModel', async (arg) => {
    const repo = typeof arg === 'string' ? arg.trim() : await pickRepo();
    if (repo) await download(ctx, repo);
  });
}

/** The first-run Download…: pick, download, use the model without asking; the folder now configured. */
export async function downloadAndUse(ctx: Ctx): Promise<string | undefined> {
  const repo = await pickRepo();
  return repo ? download(ctx, repo, undefined, true) : undefined;
}

interface RepoPick extends vscode.QuickPickItem {
  repo?: string;
}

async function pickRepo(): Promise<string | undefined> {
  const items: RepoPick[] = [];
  for (const family of ['PaliGemma 2', 'PaliGemma 1'] as const) {
    items.push({ label: family, kind: vscode.QuickPickItemKind.Separator });
    for (const e of CATALOG.filter((c) => c.family === family)) items.push({ ...describeEntry(e), repo: e.repo });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(edit) Another model id…' });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Download a PaliGemma model from Hugging Face',
    placeHolder: 'mix checkpoints do captions, OCR, questions, detection and segmentation',
    matchOnDescription: true,
    matchOnDetail: true,
    ignoreFocusOut: true,
  });
  if (!pick) return undefined;
  if (pick.repo) return pick.repo;
  return (
    await vscode.window.showInputBox({
      title: 'Download a PaliGemma model from Hugging Face',
      prompt: 'Model id (owner/name). Gated models (google/paligemma…) need a token and an accepted license.',
      placeHolder: 'onnx-community/paligemma2-3b-pt-224 or google/paligemma-3b-mix-224',
      ignoreFocusOut: true,
      validateInput: (v) => (/^[\w.-]+\/[\w.-]+$/.test(v.trim()) ? undefined : 'A Hugging Face model id (owner/name), e.g. onnx-community/paligemma2-3b-pt-224'),
    })
  )?.trim();
}

/** Downloads (and converts) `repo`; returns the installed folder once it is the configured model. */
async function download(ctx: Ctx, repo: string, chosen?: VariantPick, useWithoutAsking = false): Promise<string | undefined> {
  const variant = chosen ?? (await pickVariant(repo));
  if (!variant) return undefined;
  const dir = modelsDir();
  let result: DownloadResult | undefined;
  let failure: DownloadFailureInfo | undefined;
  const exit = await runCliTask(ctx, {
    title: `Downloading ${repo}`,
    args: ['download', repo, '--json', '--models-dir', dir, ...(variant.args ?? [])],
    hfToken: effectiveToken(process.env, await ctx.extension.secrets.get(SECRET_KEY)),
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
  if (!exit || exit.cancelled || failure?.reason === 'cancelled') return undefined;
  if (exit.code === 0 && result) return offerModel(ctx, result, useWithoutAsking);
  if (failure) return showFailure(ctx, repo, variant, failure, useWithoutAsking);
  ctx.log.error(`download ${repo}: ${exit.signal ?? `exit code ${exit.code}`}: ${exit.stderrTail.join('\n')}`);
  const choice = await vscode.window.showErrorMessage(`The download of ${repo} failed (details in the log). Try again; it resumes where it stopped.`, 'Retry', 'Show Logs');
  if (choice === 'Retry') return download(ctx, repo, variant, useWithoutAsking);
  if (choice) ctx.log.show();
  return undefined;
}

function pickVariant(repo: string): Thenable<VariantPick | undefined> {
  const onnxFirst = repo.toLowerCase().startsWith('onnx-community/') || repo.toLowerCase().includes('onnx');
  const automatic: VariantPick = { label: 'Automatic', description: "the export's only variant, or a checkpoint converted at fp32" };
  // The format that suits this machine first, marked as such.
  const hw = detectHardware();
  const best = suggestedDtype(hw);
  const why = hw.nvidiaGpu ? 'suits this machine (NVIDIA GPU found)' : 'suits this machine (no NVIDIA GPU found)';
  const [separator, ...dtypes] = CHECKPOINT_DTYPES;
  const ordered = [
    separator!,
    ...dtypes.filter((d) => d.label === best).map((d) => ({ ...d, description: `$(star-full) ${why}: ${d.description}` })),
    ...dtypes.filter((d) => d.label !== best),
  ];
  const items = onnxFirst ? [automatic, ...ONNX_VARIANTS, ...ordered] : [...ordered, automatic, ...ONNX_VARIANTS];
  return vscode.window.showQuickPick(items, {
    title: `${repo}: which weights`,
    placeHolder: 'ONNX exports come in variants; checkpoints are converted after the download',
    ignoreFocusOut: true,
  });
}

async function offerModel(ctx: Ctx, r: DownloadResult, useWithoutAsking: boolean): Promise<string | undefined> {
  if (r.pending === 'convert') {
    void vscode.window.showWarningMessage(`PaliGemma: ${r.repo} was downloaded to ${r.path} but still has to be converted (PaliGemma: Convert Hugging Face Checkpoint…).`);
    return undefined;
  }
  if (!useWithoutAsking) {
    const what = r.alreadyInstalled ? `${r.repo} is already installed` : `downloaded ${r.repo}`;
    const choice = await vscode.window.showInformationMessage(`PaliGemma: ${what} (${r.path}).`, 'Use This Model');
    if (!choice) return undefined;
  }
  await setModel(ctx, r.path);
  return r.path;
}

/** The CLI's message as it is (it says what to do), with the buttons that do it. */
async function showFailure(ctx: Ctx, repo: string, variant: VariantPick, f: DownloadFailureInfo, useWithoutAsking: boolean): Promise<string | undefined> {
  const actions: string[] = [];
  if (f.reason === 'unauthorized' || f.reason === 'gated') actions.push('Open Model Page', 'Set Token…');
  if (f.reason === 'no-variant') actions.push('Choose Again…');
  if (f.reason === 'network') actions.push('Retry');
  actions.push('Show Logs');
  const choice = await vscode.window.showErrorMessage(`PaliGemma: ${f.message}`, ...actions);
  if (choice === 'Open Model Page') await vscode.env.openExternal(vscode.Uri.parse(`https://huggingface.co/${repo}`));
  else if (choice === 'Set Token…') {
    if (await vscode.commands.executeCommand<boolean>('paligemma.setHuggingFaceToken')) return download(ctx, repo, variant, useWithoutAsking);
  } else if (choice === 'Choose Again…') return download(ctx, repo, undefined, useWithoutAsking);
  else if (choice === 'Retry')
    return download(ctx, repo, variant, useWithoutAsking); // resumes from the partial files
  else if (choice === 'Show Logs') ctx.log.show();
  return undefined;
}
