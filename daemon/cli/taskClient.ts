// The shared daemon as the commands that run a task over many images use it (`caption`, `ocr`,
// ..., `alt-text fix`): started on demand and once more if it dies mid-way, its progress reported,
// `--model` loaded when the daemon holds another one, and as many requests in flight as the loaded
// model batches, the results handed over in input order.
import * as protocol from '../protocol.js';
import { inFlightFor, inOrder, type Settled } from '../client/inOrder.js';
import { RestartingDaemonClient } from '../client/restarting.js';

export interface TaskClientOptions {
  /** The model folder, resolved; undefined for whichever model the daemon has. */
  model?: string;
  /** A line of progress for people (stderr, unless --quiet). */
  say: (line: string) => void;
  /** Told when the daemon stopped and is started again. */
  onRestart?: (message: string) => void;
}

export class TaskClient {
  private constructor(
    readonly client: RestartingDaemonClient,
    /** Requests in flight; 0 until the model has loaded (one goes, then the status tells). */
    private window: number,
  ) {}

  /** Connects (starting the daemon if none runs) and loads the model; throws when either fails. */
  static async open(o: TaskClientOptions): Promise<TaskClient> {
    const { model, say } = o;
    const client = await RestartingDaemonClient.connect({
      serveArgs: model ? ['--model', model] : [],
      onStarting: (ep) => say(`starting the PaliGemma daemon (log: ${ep.logPath})`),
      onRestart: o.onRestart,
    });
    try {
      client.onNotification(protocol.Progress.type, (p) => say(`${p.kind}: ${p.message}`));
      const st = await client.request(protocol.Status.type);
      if (model && st.model.path !== model) await client.request(protocol.LoadModel.type, { path: model });
      const ready = st.model.state === 'ready' && (!model || st.model.path === model);
      return new TaskClient(client, ready ? inFlightFor(st.model.maxBatch) : 0);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** `work` over `items` with enough in flight for the daemon's batches; outcomes to `done` in order (see inOrder). */
  each<T, R>(items: readonly T[], work: (item: T) => Promise<R>, done: (outcome: Settled<R>, item: T, index: number) => boolean | void): Promise<void> {
    return inOrder(
      items,
      () => this.window || 1,
      async (item, i) => {
        try {
          return await work(item);
        } finally {
          // Until the model has loaded its batch size is unknown: the first answer waits for it.
          if (this.window === 0 && i === 0) this.window = await this.client.request(protocol.Status.type).then((s) => inFlightFor(s.model.maxBatch), () => 1);
        }
      },
      done,
    );
  }

  close(): void {
    this.client.close();
  }
}
