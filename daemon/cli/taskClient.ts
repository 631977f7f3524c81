// The shared daemon, or the worker pool behind a broker, as the commands that run a task over many
// images use it (`caption`, `ocr`, ..., `alt-text fix`). Locally: started on demand and once more
// if it dies mid-way, its progress reported, `--model` loaded when the daemon holds another one.
// Through a broker: `--model` names a model the workers serve, and many images go as durable jobs.
// Either way as many requests in flight as the model batches, results handed over in input order.
import { RequestType } from 'vscode-jsonrpc';
import * as protocol from '../protocol.js';
import { brokerFromEnv, connectBroker, type BrokerConnection, type RequestConnection } from '../client/broker.js';
import { BROKER_METHODS, type ImageMethod } from '../client/brokerWire.js';
import { inFlightFor, inOrder, type Settled } from '../client/inOrder.js';
import { RestartingDaemonClient } from '../client/restarting.js';

export interface TaskClientOptions {
  /** Locally the model folder, resolved; through a broker the model's name or id; undefined for whichever model serves. */
  model?: string;
  /** A broker URL (`nats://host:4222`): the worker pool instead of the local daemon. */
  broker?: string;
  /** A line of progress for people (stderr, unless --quiet). */
  say: (line: string) => void;
  /** Told when the daemon stopped and is started again. */
  onRestart?: (message: string) => void;
}

export class TaskClient {
  private constructor(
    /** Requests to the daemon, or to the pool through the broker. */
    readonly connection: RequestConnection,
    private readonly broker: BrokerConnection | undefined,
    private readonly closeConnection: () => unknown,
    /** Requests in flight; 0 until the model has loaded (one goes, then the status tells). */
    private window: number,
  ) {}

  /** Connects (starting the daemon if none runs) and loads the model; throws when either fails. */
  static async open(o: TaskClientOptions): Promise<TaskClient> {
    if (o.broker) {
      const broker = await connectBroker({ url: o.broker, model: o.model, ...brokerFromEnv() });
      try {
        // The pool's maxBatch is summed over its workers: enough in flight to keep each one busy.
        const st = await broker.connection.sendRequest(protocol.Status.type);
        return new TaskClient(broker.connection, broker, () => broker.close(), inFlightFor(st.model.maxBatch));
      } catch (e) {
        await broker.close();
        throw e;
      }
    }
    const { model, say } = o;
    const client = await RestartingDaemonClient.connect({
      serveArgs: model ? ['--model', model] : [],
      onStarting: (ep) => say(`starting the PaliGemma daemon (log: ${ep.logPath})`),
      onRestart: o.onRestart,
    });
    const connection: RequestConnection = {
      sendRequest: client.request.bind(client),
      // Subscriptions last as long as the client (and move with it to a restarted daemon).
      onNotification: (type, handler) => {
        client.onNotification(type, handler);
        return { dispose: () => {} };
      },
    };
    try {
      connection.onNotification(protocol.Progress.type, (p) => say(`${p.kind}: ${p.message}`));
      const st = await connection.sendRequest(protocol.Status.type);
      if (model && st.model.path !== model) await connection.sendRequest(protocol.LoadModel.type, { path: model });
      const ready = st.model.state === 'ready' && (!model || st.model.path === model);
      return new TaskClient(connection, undefined, () => client.close(), ready ? inFlightFor(st.model.maxBatch) : 0);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** Whether the broker connection has closed (the local client reports a lost daemon in its errors). */
  get gone(): boolean {
    return this.broker?.gone ?? false;
  }

  /** `work` over `items` with enough in flight for the model's batches; outcomes to `done` in order (see inOrder). */
  each<T, R>(items: readonly T[], work: (item: T) => Promise<R>, done: (outcome: Settled<R>, item: T, index: number) => boolean | void): Promise<void> {
    return inOrder(
      items,
      () => this.window || 1,
      async (item, i) => {
        try {
          return await work(item);
        } finally {
          // Until the model has loaded its batch size is unknown: the first answer waits for it.
          if (this.window === 0 && i === 0)
            this.window = await this.connection.sendRequest(protocol.Status.type).then(
              (s) => inFlightFor(s.model.maxBatch),
              () => 1,
            );
        }
      },
      done,
    );
  }

  /**
   * One request of `method` per params, outcomes to `done` in input order: through a broker as
   * durable jobs (deduplicated, redelivered when a worker dies), locally as requests in flight.
   */
  jobs<R>(method: ImageMethod, params: readonly Record<string, unknown>[], done: (outcome: Settled<R>, index: number) => boolean | void): Promise<void> {
    if (this.broker) return this.broker.runJobs<R>(method, params, done);
    const type = new RequestType<Record<string, unknown>, R, unknown>(BROKER_METHODS[method]);
    return this.each(
      params,
      (p) => this.connection.sendRequest(type, p),
      (outcome, _p, i) => done(outcome, i),
    );
  }

  async close(): Promise<void> {
    await this.closeConnection();
  }
}
