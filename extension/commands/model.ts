// Select Model and Convert Hugging Face Checkpoint. Conversion runs `paligemma convert` (the daemon
// program's CLI) as a child process (cliTask.ts): it is long, CPU-bound work that must not share the
// daemon's event loop with requests from other windows.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { convertProgress } from '../cli/progress.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';
import { runCliTask } from './cliTask.js';

const RECENT_KEY = 'paligemma.recentModels';

interface ModelPick extends vscode.QuickPickItem {
  path?: string;
  action?: 'browse' | 'convert' | 'download' | 'default';
}

/** Where `paligemma download` installs models (the CLI's default, daemon/engine/download). */
export function modelsDir(): string {
  if (process.env.PALIGEMMA_MODELS_DIR) return process.env.PALIGEMMA_MODELS_DIR;
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'paligemma', 'models');
}

function manifestSummary(dir: string): string | undefined {
  // An onnx-community / transformers.js export (what `paligemma download` installs for onnx-community/* repos).
  if (!existsSync(join(dir, 'manifest.json')) && existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'onnx'))) {
    return ['ONNX export', onnxExportRepo(dir)].filter(Boolean).join(' · ');
  }
  try {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      name?: string;
      architecture?: string;
      dtype?: string;
      image?: { size?: number };
    };
    return [m.name, m.architecture, m.dtype, m.image?.size ? `${m.image.size} px` : undefined].filter(Boolean).join(' · ');
  } catch {
    return undefined;
  }
}

function onnxExportRepo(dir: string): string | undefined {
  try {
    const record = JSON.parse(readFileSync(join(dir, 'download.json'), 'utf8')) as { repo?: string; variant?: string };
    return [record.repo, record.variant].filter(Boolean).join(' ');
  } catch {
    return undefined;
  }
}

export function registerModelCommands(ctx: Ctx): void {
  ctx.registerCommand('paligemma.selectModel', async () => {
    const current = readConfig().modelPath;
    const recent = ctx.extension.globalState.get<string[]>(RECENT_KEY, []);
    const found = new Set<string>(recent);
    try {
      for (const name of readdirSync(modelsDir())) found.add(join(modelsDir(), name));
    } catch {
      // No models folder yet.
    }
    if (current) found.add(current);
    const items: ModelPick[] = [];
    for (const path of found) {
      const summary = manifestSummary(path);
      if (!summary) continue;
      items.push({ label: `${path === current ? '$(check) ' : ''}${basename(path)}`, description: summary, detail: path, path });
    }
    items.push(
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      { label: '$(folder-opened) Browse for a model folder…', action: 'browse' },
      { label: '$(cloud-download) Download from Hugging Face…', action: 'download' },
      { label: '$(tools) Convert a Hugging Face checkpoint…', action: 'convert' },
      { label: "$(discard) Use the daemon's default model", description: '$PALIGEMMA_MODEL or models/default', action: 'default' },
    );
    const pick = await vscode.window.showQuickPick(items, { title: 'PaliGemma model', placeHolder: current || "the daemon's default" });
    if (!pick) return;
    let path = pick.path;
    if (pick.action === 'convert') return void (await vscode.commands.executeCommand('paligemma.convertModel'));
    if (pick.action === 'download') return void (await vscode.commands.executeCommand('paligemma.downloadModel'));
    if (pick.action === 'default') return void (await setModel(ctx, ''));
    if (pick.action === 'browse') {
      const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use Model', title: 'A converted model (manifest.json) or an onnx-community export' });
      path = picked?.[0]?.fsPath;
    }
    if (!path) return;
    if (!manifestSummary(path)) {
      const choice = await vscode.window.showErrorMessage(
        `PaliGemma: ${path} is not a model folder (neither manifest.json nor an onnx-community export's config.json + onnx/). A Hugging Face checkpoint must be converted first.`,
        'Convert It…',
      );
      if (choice) await vscode.commands.executeCommand('paligemma.convertModel', vscode.Uri.file(path));
      return;
    }
    await setModel(ctx, path);
  });

  ctx.registerCommand('paligemma.convertModel', async (arg) => {
    const input =
      arg instanceof vscode.Uri
        ? arg
        : (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Convert', title: 'Hugging Face PaliGemma checkpoint folder (config.json + *.safetensors)' }))?.[0];
    if (!input) return;
    if (input.scheme !== 'file') return void vscode.window.showErrorMessage('PaliGemma: the checkpoint must be a folder on this machine.');
    if (!existsSync(join(input.fsPath, 'config.json'))) {
      return void vscode.window.showErrorMessage(`PaliGemma: ${input.fsPath} has no config.json; pick the folder of a Hugging Face PaliGemma checkpoint.`);
    }
    const dtype = await vscode.window.showQuickPick(
      [
        { label: 'int4', description: 'smallest and fastest on GPU and CPU; slightly less accurate' },
        { label: 'fp16', description: 'GPU; half the size of fp32' },
        { label: 'fp32', description: 'reference accuracy; largest' },
      ],
      { title: 'Weight format' },
    );
    if (!dtype) return;
    const output = await vscode.window.showInputBox({
      title: 'Where to write the converted model',
      value: join(modelsDir(), `${basename(input.fsPath)}-${dtype.label}`),
      validateInput: (v) => (v.trim() ? (existsSync(v.trim()) ? 'This folder exists already: choose another' : undefined) : 'A folder path'),
    });
    if (!output) return;
    const ok = await runConvert(ctx, input.fsPath, output.trim(), dtype.label);
    if (!ok) return;
    const choice = await vscode.window.showInformationMessage(`PaliGemma: converted to ${output}.`, 'Use This Model');
    if (choice) await setModel(ctx, output.trim());
  });
}

export async function setModel(ctx: Ctx, path: string): Promise<void> {
  if (path) {
    const recent = ctx.extension.globalState.get<string[]>(RECENT_KEY, []).filter((p) => p !== path);
    await ctx.extension.globalState.update(RECENT_KEY, [path, ...recent].slice(0, 10));
  }
  // The configuration listener reloads the model in the daemon.
  await vscode.workspace.getConfiguration('paligemma').update('modelPath', path, vscode.ConfigurationTarget.Global);
}

async function runConvert(ctx: Ctx, input: string, output: string, dtype: string): Promise<boolean> {
  const exit = await runCliTask(ctx, {
    title: `Converting ${basename(input)} (${dtype})`,
    args: ['convert', input, output, '--dtype', dtype],
    onLine: (line) => convertProgress(line),
  });
  if (!exit) return false;
  if (exit.code === 0) return true;
  if (!exit.cancelled) {
    const last = exit.stderrTail.at(-1) ?? '';
    void vscode.window
      .showErrorMessage(`PaliGemma: conversion failed (${exit.signal ?? `exit code ${exit.code}`}): ${last}`, 'Show Logs')
      .then((c) => c && ctx.log.show());
  }
  return false;
}
