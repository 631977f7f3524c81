// Select Model and Convert Hugging Face Checkpoint. Conversion runs `paligemma convert` (the daemon
// program's CLI) as a child process (cliTask.ts): it is long, CPU-bound work that must not share the
// daemon's event loop with requests from other windows.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { convertProgress } from '../cli/progress.js';
import { readConfig, updateSetting } from '../config.js';
import type { Ctx } from '../ctx.js';
import { CPU_FORMAT_NOTES } from '../modelCatalog.js';
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

/** A one-line summary of a model folder; undefined when the folder is not a model. */
export function manifestSummary(dir: string): string | undefined {
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
    const path = pick.path;
    if (pick.action === 'convert') return void (await vscode.commands.executeCommand('paligemma.convertModel'));
    if (pick.action === 'download') return void (await vscode.commands.executeCommand('paligemma.downloadModel'));
    if (pick.action === 'default') return void (await setModel(ctx, ''));
    if (pick.action === 'browse') return void (await chooseModelFolder(ctx));
    if (path) await setModel(ctx, path);
  });

  ctx.registerCommand('paligemma.convertModel', (arg) => convertCheckpoint(ctx, arg instanceof vscode.Uri ? arg : undefined));
}

/**
 * Asks for a model folder (converted, or an onnx-community export) and uses it; a checkpoint folder
 * is offered for conversion. Returns the folder now configured, if any.
 */
export async function chooseModelFolder(ctx: Ctx): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: 'Use Model',
    title: 'A converted model (manifest.json) or an onnx-community export',
    defaultUri: existsSync(modelsDir()) ? vscode.Uri.file(modelsDir()) : undefined,
  });
  const path = picked?.[0]?.fsPath;
  if (!path) return undefined;
  if (!manifestSummary(path)) {
    const checkpoint = existsSync(join(path, 'config.json'));
    const choice = await vscode.window.showErrorMessage(
      checkpoint
        ? `${path} is a Hugging Face checkpoint, not a converted model. Convert it first.`
        : `${path} is not a model folder: it has neither manifest.json nor an onnx-community export's config.json and onnx/. Choose another folder.`,
      ...(checkpoint ? ['Convert It…'] : ['Choose Again…']),
    );
    if (choice === 'Convert It…') return convertCheckpoint(ctx, vscode.Uri.file(path));
    if (choice === 'Choose Again…') return chooseModelFolder(ctx);
    return undefined;
  }
  await setModel(ctx, path);
  return path;
}

/** Converts a Hugging Face checkpoint; returns the converted folder once it is the configured model. */
export async function convertCheckpoint(ctx: Ctx, arg?: vscode.Uri, useWithoutAsking = false): Promise<string | undefined> {
  const input =
    arg ??
    (
      await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        openLabel: 'Convert',
        title: 'Hugging Face PaliGemma checkpoint folder (config.json + *.safetensors)',
      })
    )?.[0];
  if (!input) return undefined;
  if (input.scheme !== 'file') return void vscode.window.showErrorMessage('The checkpoint must be a folder on this machine. Copy it here and choose it again.');
  if (!existsSync(join(input.fsPath, 'config.json'))) {
    return void vscode.window.showErrorMessage(`${input.fsPath} has no config.json. Choose the folder of a Hugging Face PaliGemma checkpoint.`);
  }
  const dtype = await vscode.window.showQuickPick(
    [
      { label: 'int4', description: 'smallest and fastest on a GPU; slightly less accurate' },
      { label: 'int4-cpu', description: 'int4 weights with int8 compute: about 4x faster on CPUs', args: ['--dtype', 'int4', '--accuracy-level', '4'] },
      {
        label: 'int4-cpu-v8',
        description: CPU_FORMAT_NOTES['int4-cpu-v8'],
        args: ['--dtype', 'int4', '--accuracy-level', '4', '--vision-dtype', 'int8'],
      },
      { label: 'int8', description: CPU_FORMAT_NOTES.int8 },
      { label: 'fp16', description: 'GPU; half the size of fp32' },
      { label: 'fp32', description: 'reference accuracy; largest' },
    ],
    { title: 'Weight format' },
  );
  if (!dtype) return undefined;
  const output = await vscode.window.showInputBox({
    title: 'Where to write the converted model',
    value: join(modelsDir(), `${basename(input.fsPath)}-${dtype.label}`),
    validateInput: (v) => (v.trim() ? (existsSync(v.trim()) ? 'This folder exists already: choose another' : undefined) : 'A folder path'),
  });
  if (!output) return undefined;
  const ok = await runConvert(ctx, input.fsPath, output.trim(), dtype.label, dtype.args ?? ['--dtype', dtype.label]);
  if (!ok) return undefined;
  if (!useWithoutAsking) {
    const choice = await vscode.window.showInformationMessage(`PaliGemma: converted to ${output}.`, 'Use This Model');
    if (!choice) return undefined;
  }
  await setModel(ctx, output.trim());
  return output.trim();
}

export async function setModel(ctx: Ctx, path: string): Promise<void> {
  if (path) {
    const recent = ctx.extension.globalState.get<string[]>(RECENT_KEY, []).filter((p) => p !== path);
    await ctx.extension.globalState.update(RECENT_KEY, [path, ...recent].slice(0, 10));
  }
  // The configuration listener reloads the model in the daemon.
  await updateSetting('modelPath', path);
}

async function runConvert(ctx: Ctx, input: string, output: string, dtype: string, dtypeArgs: string[]): Promise<boolean> {
  const exit = await runCliTask(ctx, {
    title: `Converting ${basename(input)} (${dtype})`,
    args: ['convert', input, output, ...dtypeArgs],
    onLine: (line) => convertProgress(line),
  });
  if (!exit) return false;
  if (exit.code === 0) return true;
  if (!exit.cancelled) {
    const last = exit.stderrTail.at(-1) ?? '';
    void vscode.window.showErrorMessage(`PaliGemma: conversion failed (${exit.signal ?? `exit code ${exit.code}`}): ${last}`, 'Show Logs').then((c) => c && ctx.log.show());
  }
  return false;
}
