import type { Database } from "../db/database";
import type { Logger } from "../logger";
import { ensureCheckpoints, listCheckpoints, type Checkpoint } from "./checkpoints";
import { LeaderLease } from "./leaderLease";
import { logSource, type EventSource, type SourceWatch } from "./logSource";
import type { AnyProjection } from "./projection";
import { ProjectionWorker, type WorkerObserver } from "./projectionWorker";

const LEADER_LOCK_KEY = 72_707_002; // one projector leader per database

export interface ProjectorObserver extends WorkerObserver {
  onLeadership?(leading: boolean): void;
}

/** What the API holds of its projector, in this thread (Projector) or another (ProjectorThread). */
export interface ProjectorRunner {
  readonly isLeader: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ProjectorOptions {
  batchSize: number;
  /** Safety-net poll, leadership retry, and how often checkpoints are read again. */
  pollMs: number;
  logger: Logger;
  observer?: ProjectorObserver;
  /** Where the events come from; default the event log of `db`. */
  source?: EventSource;
}

/**
 * Applies the events to the read tables. Only the instance holding the leader lease projects;
 * the others try again every pollMs, so a standby takes over when the leader's session dies.
 * Woken by the source (a NOTIFY per commit), with a poll as safety net; wake-ups that arrive
 * during a run coalesce into one more run. Each projection is a worker of its own, run side by
 * side with the others (independent checkpoints and transactions).
 */
export class Projector implements ProjectorRunner {
  private readonly lease: LeaderLease;
  private readonly source: EventSource;
  private readonly workers: ProjectionWorker[];
  /** Where each projection stands, as this leader last read or wrote it (read again every pollMs). */
  private checkpoints: Map<string, Checkpoint> | undefined;
  private checkpointsReadAt = 0;
  private watch: SourceWatch | undefined;
  private poll: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  // Not stopped until stop(): catchUp() must also work on a projector that never start()ed (CLI, tests).
  private stopped = false;

  constructor(
    private readonly db: Database,
    projections: AnyProjection[],
    private readonly options: ProjectorOptions,
  ) {
    this.source = options.source ?? logSource(db);
    this.workers = projections.map((p) => new ProjectionWorker(db, p, this.source, options));
    this.lease = new LeaderLease(db, LEADER_LOCK_KEY, (error) => {
      options.logger.warn({ err: error }, "projector: lost the leader session; will try again");
      void this.resign();
    });
  }

  get isLeader(): boolean {
    return this.watch !== undefined;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await ensureCheckpoints(this.db.sql, this.names());
    await this.tryLead();
    this.poll = setInterval(() => (this.isLeader ? this.wake() : void this.tryLead()), this.options.pollMs);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    await this.running?.catch(() => undefined);
    await this.resign();
  }

  /** Run now (or again right after the current run). */
  wake(): void {
    if (this.stopped || !this.isLeader) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.runAll().then((again) => {
      this.running = undefined;
      this.again ||= again;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Projects until every running projection has caught up with the committed log (CLI, tests). */
  async catchUp(): Promise<void> {
    await ensureCheckpoints(this.db.sql, this.names());
    this.checkpoints = undefined;
    if (await this.runAll()) await this.runAll();
  }

  private names(): string[] {
    return this.workers.map((w) => w.projection.name);
  }

  private async tryLead(): Promise<void> {
    if (this.stopped || this.isLeader) return;
    try {
      if (!(await this.lease.tryAcquire())) return;
      const watch = await this.source.watch(() => this.wake(), this.options.pollMs);
      if (this.stopped || !this.lease.held) {
        await watch.close(); // stopped, or the session died, while we were subscribing
        return;
      }
      this.watch = watch;
      this.checkpoints = undefined;
      this.options.logger.info("projector: became leader");
      this.options.observer?.onLeadership?.(true);
      this.wake();
    } catch (error) {
      this.options.logger.warn({ err: error }, "projector: could not try for leadership");
      await this.resign();
    }
  }

  /** Gives up leadership (closing the session releases the lock), or the standby's session. */
  private async resign(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    if (watch) this.options.observer?.onLeadership?.(false);
    await watch?.close().catch(() => undefined);
    await this.lease.release();
  }

  /** One run of every projection that is RUNNING. True when a checkpoint moved under it: run again. */
  private async runAll(): Promise<boolean> {
    try {
      let progressed = false;
      let moved = false;
      const checkpoints = await this.currentCheckpoints();
      const runs = await Promise.allSettled(
        this.workers.map(async (worker) => {
          const from = checkpoints.get(worker.projection.name);
          if (from?.status !== "RUNNING") return;
          const reached = await worker.run(from, () => this.stopped);
          if (reached) checkpoints.set(reached.name, reached);
          else moved = true;
          if (!reached || reached.position !== from.position) progressed = true;
        }),
      );
      const failed = runs.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
      if (moved) {
        this.checkpoints = undefined; // read them again on the next run, which follows at once
        return true;
      }
      // Another run follows at once and looks again; else the source may hold events back.
      if (!this.again) await this.watch?.idle(progressed);
      return false;
    } catch (error) {
      this.checkpoints = undefined;
      this.options.logger.warn({ err: error }, "projector: run failed; the next poll retries");
      return false;
    }
  }

  /** Checkpoints change elsewhere rarely (an operator's retry, a rebuild): read them again on the poll. */
  private async currentCheckpoints(): Promise<Map<string, Checkpoint>> {
    if (!this.checkpoints || Date.now() - this.checkpointsReadAt >= this.options.pollMs) {
      this.checkpoints = new Map((await listCheckpoints(this.db.sql)).map((c) => [c.name, c]));
      this.checkpointsReadAt = Date.now();
    }
    return this.checkpoints;
  }
}
