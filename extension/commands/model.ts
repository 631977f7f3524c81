// Select Model and Convert Hugging Face Checkpoint. Conversion runs `paligemma convert` (the daemon
// program's CLI) as a child process: it is long, CPU-bound work that must not share the daemon's
// event loop with requests from other windows.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { daemonProgram } from '../client.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';

const RECENT_KEY = 'paligemma.recentModels';

interface ModelPick extends vscode.QuickPickItem {
  path?: string;
  action?: 'browse' | 'convert' | 'default';
}

export function modelsDir(): string {
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'paligemma', 'models');
}

function manifestSummary(dir: string): string | undefined {
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
      { label: '$(folder-opened) Browse for a converted model folder…', action: 'browse' },
      { label: '$(tools) Convert a Hugging Face checkpoint…', action: 'convert' },
      { label: "$(discard) Use the daemon's default model", description: '$PALIGEMMA_MODEL or models/default', action: 'default' },
    );
    const pick = await vscode.window.showQuickPick(items, { title: 'PaliGemma model', placeHolder: current || "the daemon's default" });
    if (!pick) return;
    let path = pick.path;
    if (pick.action === 'convert') return void (await vscode.commands.executeCommand('paligemma.convertModel'));
    if (pick.action === 'default') return void (await setModel(ctx, ''));
    if (pick.action === 'browse') {
      const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use Model', title: 'A folder holding manifest.json' });
      path = picked?.[0]?.fsPath;
    }
    if (!path) return;
    if (!existsSync(join(path, 'manifest.json'))) {
      const choice = await vscode.window.showErrorMessage(
        `PaliGemma: ${path} is not a converted model (it has no manifest.json). A Hugging Face checkpoint must be converted first.`,
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

async function setModel(ctx: Ctx, path: string): Promise<void> {
  if (path) {
    const recent = ctx.extension.globalState.get<string[]>(RECENT_KEY, []).filter((p) => p !== path);
    await ctx.extension.globalState.update(RECENT_KEY, [path, ...recent].slice(0, 10));
  }
  // The configuration listener reloads the model in the daemon.
  await vscode.workspace.getConfiguration('paligemma').update('modelPath', path, vscode.ConfigurationTarget.Global);
}

function runConvert(ctx: Ctx, input: string, output: string, dtype: string): Thenable<boolean> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Converting ${basename(input)} (${dtype})`, cancellable: true },
    (progress, token) =>
      new Promise<boolean>((resolve) => {
        const script = daemonProgram(ctx.extension.extensionUri);
        const node = readConfig().nodePath || process.execPath;
        const args = [script, 'convert', input, output, '--dtype', dtype];
        ctx.log.info(`convert: ${node} ${args.join(' ')}`);
        const child = spawn(node, args, { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let last = 0;
        let tail: string[] = [];
        const onLine = (line: string) => {
          ctx.log.info(`convert: ${line}`);
          tail = [...tail, line].slice(-5);
          // `[ 42%] message` lines from the CLI.
          const m = /^\[\s*(\d+)%\]\s*(.*)$/.exec(line);
          if (m) {
            const pct = Number(m[1]);
            progress.report({ increment: Math.max(0, pct - last), message: m[2] });
            last = Math.max(last, pct);
          }
        };
        let buffer = '';
        const read = (chunk: Buffer) => {
          buffer += chunk.toString('utf8');
          const lines = buffer.split(/\r?\n/);
          buffer = lines.pop() ?? '';
          lines.filter(Boolean).forEach(onLine);
        };
        child.stdout.on('data', read);
        child.stderr.on('data', read);
        const cancel = token.onCancellationRequested(() => child.kill('SIGTERM'));
        child.on('error', (err) => {
          cancel.dispose();
          void vscode.window.showErrorMessage(`PaliGemma: could not run the converter: ${err.message}`);
          resolve(false);
        });
        child.on('close', (code, signal) => {
          cancel.dispose();
          if (buffer) onLine(buffer);
          if (code === 0) return resolve(true);
          if (!token.isCancellationRequested) {
            void vscode.window
              .showErrorMessage(`PaliGemma: conversion failed (${signal ?? `exit code ${code}`}): ${tail[tail.length - 1] ?? ''}`, 'Show Logs')
              .then((c) => c && ctx.log.show());
          }
          resolve(false);
        });
      }),
  );
}
