import type { Database } from "../db/database";
import type { Logger } from "../logger";
import { ensureCheckpoints, listCheckpoints, type Checkpoint } from "./checkpoints";
import { measureLag } from "./lag";
import { ProjectionLeases } from "./leases";
import { logSource, type EventSource, type SourceWatch } from "./logSource";
import type { AnyProjection } from "./projection";
import { ProjectionWorker, type WorkerObserver } from "./projectionWorker";

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
  /**
   * Safety-net poll, how often the leases are looked at again, how often checkpoints are read
   * again, and how often the lag of the projections this instance leads is measured.
   */
  pollMs: number;
  /** This instance, as the projections query shows the leader of each projection. */
  instanceId: string;
  logger: Logger;
  observer?: ProjectorObserver;
  /** Where the events come from; default the event log of `db`. */
  source?: EventSource;
}

/**
 * Applies the events to the read tables. Each projection has a lease; the live instances share
 * them, and each projects only the projections it leads. Every pollMs an instance looks at the
 * leases again, so a dead instance's projections move to the others, and a new instance gets
 * its share. Woken by the source (a NOTIFY per commit), with a poll as safety net; wake-ups that
 * arrive during a run coalesce into one more run. Each projection is a worker of its own, run
 * side by side with the others (independent checkpoints and transactions).
 *
 * On the same poll, it measures how far behind its source each projection it leads is, and
 * stores that in the read database: the query side shows the lag from there, without a
 * connection to the write database (which may be another server, or absent behind a broker).
 */
export class Projector implements ProjectorRunner {
  private readonly leases: ProjectionLeases;
  private readonly source: EventSource;
  private readonly workers: ProjectionWorker[];
  /** Where each projection stands, as this leader last read or wrote it (read again every pollMs). */
  private checkpoints: Map<string, Checkpoint> | undefined;
  private checkpointsReadAt = 0;
  private watch: SourceWatch | undefined;
  private poll: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private leasing = false;
  private measuring = false;
  // Not stopped until stop(): catchUp() must also work on a projector that never start()ed (CLI, tests).
  private stopped = false;

  constructor(
    private readonly db: Database,
    projections: AnyProjection[],
    private readonly options: ProjectorOptions,
  ) {
    this.source = options.source ?? logSource(db);
    this.workers = projections.map((p) => new ProjectionWorker(db, p, this.source, options));
    this.leases = new ProjectionLeases(db, this.names(), options.instanceId, (error) => {
      options.logger.warn({ err: error }, "projector: lost the session of its leases; will try again");
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
    void this.measureLag();
    this.poll = setInterval(
      () =>
        void this.tryLead().then(() => {
          this.wake();
          return this.measureLag();
        }),
      this.options.pollMs,
    );
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
    this.running = this.runAll((name) => this.leases.held.has(name)).then((again) => {
      this.running = undefined;
      this.again ||= again;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Projects every running projection, leases or not, until it has caught up with the committed log (CLI, tests). */
  async catchUp(): Promise<void> {
    await ensureCheckpoints(this.db.sql, this.names());
    this.checkpoints = undefined;
    // The server's transactions share one snapshot: one running in another database may hold the
    // reader back, and nothing here waits for it to end. The source leaves it out; read again.
    do {
      if (await this.runAll(() => true)) await this.runAll(() => true);
    } while (await this.source.releaseHeldBack?.());
    await measureLag(this.db, this.source, [...(await this.currentCheckpoints()).values()], this.options.instanceId);
  }

  private names(): string[] {
    return this.workers.map((w) => w.projection.name);
  }

  /** Looks at the leases again: takes this instance's share, watches the source while it leads any. */
  private async tryLead(): Promise<void> {
    if (this.stopped || this.leasing) return;
    this.leasing = true;
    try {
      const before = new Set(this.leases.held);
      await this.leases.rebalance();
      if (this.stopped) {
        await this.resign(); // stop() ran meanwhile: give back what this look took
        return;
      }
      const held = this.leases.held;
      if ([...held].some((name) => !before.has(name))) this.checkpoints = undefined;
      if (held.size > 0 && !this.watch) {
        const watch = await this.source.watch(() => this.wake(), this.options.pollMs);
        if (this.stopped || this.leases.held.size === 0) {
          await watch.close(); // stopped, or the session died, while we were subscribing
          return;
        }
        this.watch = watch;
        this.options.logger.info({ projections: [...held] }, "projector: leads projections");
        this.options.observer?.onLeadership?.(true);
        this.wake();
      } else if (held.size === 0 && this.watch) {
        await this.unwatch();
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, "projector: could not look at the leases");
      await this.resign();
    } finally {
      this.leasing = false;
    }
  }

  private async unwatch(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    if (watch) this.options.observer?.onLeadership?.(false);
    await watch?.close().catch(() => undefined);
  }

  /** Gives up every lease (closing their session releases the locks). */
  private async resign(): Promise<void> {
    await this.unwatch();
    await this.leases.release();
  }

  /** One run of every projection that is RUNNING and chosen. True when a checkpoint moved under it: run again. */
  private async runAll(chosen: (name: string) => boolean): Promise<boolean> {
    try {
      let progressed = false;
      let moved = false;
      const checkpoints = await this.currentCheckpoints();
      const runs = await Promise.allSettled(
        this.workers.map(async (worker) => {
          const from = checkpoints.get(worker.projection.name);
          if (from?.status !== "RUNNING" || !chosen(from.name)) return;
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

  /** Measures the lag of the projections this instance leads, from where this instance last saw their checkpoints. */
  private async measureLag(): Promise<void> {
    if (this.stopped || this.measuring || this.leases.held.size === 0) return;
    this.measuring = true;
    try {
      const led = [...(await this.currentCheckpoints()).values()].filter((c) => this.leases.held.has(c.name));
      if (!this.stopped) await measureLag(this.db, this.source, led, this.options.instanceId);
    } catch (error) {
      this.options.logger.warn({ err: error }, "projector: could not measure the lag; the next poll tries again");
    } finally {
      this.measuring = false;
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
