// A CLI run of the daemon program (`paligemma convert`, `paligemma download`) in a cancellable
// progress notification: the one piece both Convert Model and Download Model use.
import * as vscode from 'vscode';
import { runCli, type CliExit } from '../cli/childProcess.js';
import { cliEnvironment, type ProgressStep } from '../cli/progress.js';
import { daemonProgram } from '../client.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';
import { errorMessage } from '../../daemon/client/shared.js';

export interface CliTask {
  title: string;
  /** Arguments after the daemon program, e.g. ['convert', in, out]. */
  args: string[];
  /** Passed to the child as HF_TOKEN. */
  hfToken?: string;
  /** How Cancel stops the child (download: SIGINT, so it exits cleanly and keeps its partial files). */
  killSignal?: NodeJS.Signals;
  /** Reads one output line; returns where the task is, if the line says. */
  onLine(line: string, stream: 'stdout' | 'stderr'): ProgressStep | undefined;
}

/** Runs the task; undefined (after an error message) when the child cannot even start. */
export function runCliTask(ctx: Ctx, task: CliTask): Thenable<CliExit | undefined> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: task.title, cancellable: true }, async (progress, token) => {
    const name = task.args[0];
    let command: string;
    let args: string[];
    try {
      command = readConfig().nodePath || process.execPath;
      args = [daemonProgram(ctx.extension.extensionUri), ...task.args];
    } catch (e) {
      void vscode.window.showErrorMessage(`PaliGemma: ${errorMessage(e)}`);
      return undefined;
    }
    ctx.log.info(`${name}: ${command} ${args.join(' ')}`);
    let shown = 0; // a notification's bar only moves forward, by increments
    const abort = new AbortController();
    const cancel = token.onCancellationRequested(() => abort.abort());
    try {
      return await runCli({
        command,
        args,
        env: cliEnvironment(process.env, task.hfToken),
        signal: abort.signal,
        killSignal: task.killSignal,
        onLine(line, stream) {
          ctx.log.info(`${name}: ${line}`);
          const step = task.onLine(line, stream);
          if (!step) return;
          const percent = step.percent === undefined ? shown : Math.min(100, Math.max(shown, step.percent));
          progress.report({ increment: percent - shown, message: step.message });
          shown = percent;
        },
      });
    } catch (e) {
      void vscode.window.showErrorMessage(`PaliGemma: could not run \`paligemma ${name}\`: ${errorMessage(e)}`);
      return undefined;
    } finally {
      cancel.dispose();
    }
  });
}
