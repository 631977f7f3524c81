// The team's worker pool behind a NATS broker (`paligemma.broker`): its own status bar item
// ("cluster: N workers"), the broker credentials in VS Code's SecretStorage (never in settings), and
// a connection with the daemon's request shape for the requests that should go to the pool.
import * as vscode from 'vscode';
import type { RequestType } from 'vscode-jsonrpc';
import { type BrokerConnection, connectBroker } from '../daemon/client/broker.js';

const SECRET_KEY = 'paligemma.broker.credentials';
const REFRESH_MS = 30_000;

type Credentials = { kind: 'token'; value: string } | { kind: 'creds'; value: string };

export class ClusterClient implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('paligemma.cluster', vscode.StatusBarAlignment.Right, 99);
  private conn: Promise<BrokerConnection> | undefined;
  private connUrl = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.item.name = 'PaliGemma cluster';
    this.item.command = 'paligemma.setBrokerCredentials';
    this.subscriptions.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('paligemma.broker')) void this.reset();
      }),
      secrets.onDidChange((e) => {
        if (e.key === SECRET_KEY) void this.reset();
      }),
    );
    void this.refresh();
  }

  /** The broker URL from the settings; empty: no cluster, everything goes to the local daemon. */
  get url(): string {
    return vscode.workspace.getConfiguration('paligemma').get<string>('broker', '').trim();
  }

  /** A request to the worker pool, with the local daemon's request shape and errors. */
  async sendRequest<Params, Result>(type: RequestType<Params, Result, void>, params: Params): Promise<Result> {
    const c = await this.connection();
    return c.connection.sendRequest(type, params);
  }

  /** Asks for a token or a .creds file and keeps it in SecretStorage. */
  async setCredentials(): Promise<void> {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'Token', detail: "the NATS server's authorization token", choice: 'token' as const },
        { label: 'Credentials file…', detail: 'a NATS .creds file (user JWT and nkey seed), as nsc writes it', choice: 'creds' as const },
        { label: 'Remove stored credentials', choice: 'remove' as const },
      ],
      { title: "PaliGemma cluster credentials (kept in VS Code's secret storage)" },
    );
    if (!pick) return;
    if (pick.choice === 'remove') {
      await this.secrets.delete(SECRET_KEY);
      return;
    }
    let value: string | undefined;
    if (pick.choice === 'token') {
      value = await vscode.window.showInputBox({ title: 'NATS token', password: true, ignoreFocusOut: true, validateInput: (v) => (v.trim() ? undefined : 'the token is empty') });
    } else {
      const [file] = (await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'NATS credentials': ['creds'], 'All files': ['*'] } })) ?? [];
      if (file) value = new TextDecoder().decode(await vscode.workspace.fs.readFile(file));
      if (value !== undefined && !value.includes('BEGIN NATS USER JWT')) {
        void vscode.window.showErrorMessage(`PaliGemma: ${file!.fsPath} is not a NATS credentials file (no "BEGIN NATS USER JWT" block); nothing was stored.`);
        return;
      }
    }
    if (value === undefined) return;
    await this.secrets.store(SECRET_KEY, JSON.stringify({ kind: pick.choice, value: value.trim() } satisfies Credentials));
  }

  private async connection(): Promise<BrokerConnection> {
    const url = this.url;
    if (!url) throw new Error('no cluster is configured (set paligemma.broker to nats://host:4222)');
    if (!this.conn || this.connUrl !== url) {
      await this.closeConnection();
      this.connUrl = url;
      this.conn = (async () => {
        const raw = await this.secrets.get(SECRET_KEY);
        const cred = raw ? (JSON.parse(raw) as Credentials) : undefined;
        return connectBroker({ url, token: cred?.kind === 'token' ? cred.value : undefined, credsData: cred?.kind === 'creds' ? cred.value : undefined });
      })();
      this.conn.catch(() => (this.conn = undefined));
    }
    return this.conn;
  }

  private async closeConnection(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    if (c)
      await c.then(
        (x) => x.close(),
        () => undefined,
      );
  }

  private async reset(): Promise<void> {
    await this.closeConnection();
    await this.refresh();
  }

  private async refresh(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const url = this.url;
    if (!url) {
      this.item.hide();
      return;
    }
    try {
      const workers = await (await this.connection()).workers();
      const models = [...new Set(workers.map((w) => `${w.model} (${w.executionProvider})`))];
      this.item.text = `$(server-environment) cluster: ${workers.length} worker${workers.length === 1 ? '' : 's'}`;
      this.item.tooltip = new vscode.MarkdownString(
        `**PaliGemma cluster** at \`${url}\`\n\n${models.length ? models.map((m) => `- ${m}`).join('\n') : 'No worker answers: start one with `paligemma worker --broker ' + url + ' --model <dir>`.'}\n\nClick to set the broker credentials.`,
      );
      this.item.backgroundColor = workers.length ? undefined : new vscode.ThemeColor('statusBarItem.warningBackground');
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.log.warn(`cluster: ${message}`);
      this.item.text = '$(server-environment) cluster: unreachable';
      this.item.tooltip = `PaliGemma cluster at ${url}: ${message}. Click to set the broker credentials.`;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    }
    this.item.show();
    this.timer = setTimeout(() => void this.refresh(), REFRESH_MS);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.subscriptions.splice(0).forEach((d) => d.dispose());
    this.item.dispose();
    void this.closeConnection();
  }
}

export function registerCluster(
  register: (name: string, handler: () => unknown) => void,
  push: (d: vscode.Disposable) => void,
  secrets: vscode.SecretStorage,
  log: vscode.LogOutputChannel,
): ClusterClient {
  const cluster = new ClusterClient(secrets, log);
  push(cluster);
  register('paligemma.setBrokerCredentials', () => cluster.setCredentials());
  return cluster;
}
