import type { PostgresOptions } from "../db/postgres";
import { Worker } from "node:worker_threads";
import type { Logger } from "../logger";
import type { EventStreamOptions } from "../relay/eventStream";
import type { ProjectorObserver, ProjectorRunner } from "./projector";

export interface ProjectorThreadData {
  /** Where the events come from: the write database's event log, or the event stream on NATS (PROJECTOR_SOURCE). */
  source: { kind: "log"; databaseUrl: string } | { kind: "nats"; stream: EventStreamOptions };
  /** The read database, where it writes (the same URL unless the read side has its own). */
  readDatabaseUrl: string;
  batchSize: number;
  pollMs: number;
  logLevel: string;
  instanceId: string;
  /** The deadlines of its connections (DB_QUERY_TIMEOUT_MS, DB_CONNECT_TIMEOUT_MS). */
  deadlines: PostgresOptions;
}

export type ToProjectorThread = { type: "stop" };
export type FromProjectorThread =
  | { type: "started" }
  | { type: "startFailed"; message: string }
  | { type: "stopped" }
  | { type: "leadership"; leading: boolean }
  | { type: "batch"; projection: string; events: number; seconds: number }
  | { type: "failed"; projection: string };

const RESTART_DELAY_MS = 1000;

/**
 * The projector on a worker thread (Postgres only: the embedded database lives in the main
 * thread). The API's event loop serves requests; the projector's runs batches, on the other
 * core, with its own connections. Leadership and batch counts come back as messages (for
 * /metrics and isLeader). A thread that dies is started again; its leader session dies with it,
 * so another instance, or the new thread, takes the lead.
 */
export class ProjectorThread implements ProjectorRunner {
  private worker: Worker | undefined;
  private leading = false;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly data: ProjectorThreadData,
    private readonly logger: Logger,
    private readonly observer?: ProjectorObserver,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  async start(): Promise<void> {
    this.stopping = false;
    const worker = new Worker(new URL("./projector.worker.mjs", import.meta.url), { workerData: this.data });
    this.worker = worker;
    let started = false;
    await new Promise<void>((resolve, reject) => {
      worker.on("message", (message: FromProjectorThread) => {
        switch (message.type) {
          case "started":
            started = true;
            resolve();
            break;
          case "startFailed":
            reject(new Error(`projector thread failed to start: ${message.message}`));
            break;
          case "leadership":
            this.setLeading(message.leading);
            break;
          case "batch":
            this.observer?.onBatch?.(message.projection, message.events, message.seconds);
            break;
          case "failed":
            this.observer?.onFailed?.(message.projection);
            break;
          case "stopped":
            break;
        }
      });
      worker.on("error", (error) => this.logger.error({ err: error }, "projector thread: uncaught error"));
      worker.on("exit", (code) => {
        reject(new Error(`projector thread exited with code ${code} while starting`));
        if (this.worker !== worker) return;
        this.worker = undefined;
        this.setLeading(false);
        if (this.stopping || !started) return;
        this.logger.error({ code }, "projector thread exited; starting it again");
        this.restartTimer = setTimeout(
          () =>
            void this.start().catch((error) => this.logger.error({ err: error }, "projector thread: restart failed")),
          RESTART_DELAY_MS,
        );
        this.restartTimer.unref();
      });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.postMessage({ type: "stop" } satisfies ToProjectorThread);
    // A stop that hangs (a batch stuck on a dead connection) must not hang the shutdown.
    const timer = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.observer?.onLeadership?.(leading);
  }
}
