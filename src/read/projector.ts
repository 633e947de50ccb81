import { inIssueOrder, type Database, type Listener, type Sql, type SqlSession } from "../db/database";
import { hasHeldBackEvents } from "../eventLog/eventLog";
import type { Logger } from "../logger";
import { isConnectionError, isRetryableTransactionError } from "../shared/errors";
import type { RecordedEvent } from "../shared/events";
import {
  ensureCheckpoints,
  listCheckpoints,
  lockCheckpointAndReadEvents,
  markFailed,
  saveCheckpoint,
  type ProjectionRunStatus,
} from "./checkpoints";
import type { Projection } from "./projection";

const LEADER_LOCK_KEY = 72_707_002; // one projector leader per database
export const EVENTS_APPENDED = "events_appended";

/** Wakes the projector leader, wherever it runs (after an operator changed a checkpoint). */
export async function wakeProjectors(sql: Sql): Promise<void> {
  await sql.query(`SELECT pg_notify($1, '')`, [EVENTS_APPENDED]);
}

export interface ProjectorObserver {
  onBatch?(projection: string, events: number, seconds: number): void;
  onFailed?(projection: string): void;
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
  /** Safety-net poll and leadership retry interval. */
  pollMs: number;
  logger: Logger;
  observer?: ProjectorObserver;
  /** Fault injection for tests: runs inside a batch's transaction after the rows, before the checkpoint. */
  beforeCheckpoint?: (projection: string, events: RecordedEvent[]) => Promise<void> | void;
}

/** A failure of the infrastructure, not of the event: retry later, do not mark the projection failed. */
function isTransient(error: unknown): boolean {
  return (
    isRetryableTransactionError(error) ||
    (error as { transient?: unknown })?.transient === true ||
    isConnectionError(error)
  );
}

/** Read rows and checkpoints are derived from the durable log: their commit need not wait for the disk. */
const PROJECTION_COMMIT = { asyncCommit: true } as const;

class BatchError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly first: RecordedEvent | undefined,
  ) {
    super(String((cause as Error)?.message ?? cause));
  }
}

/**
 * Applies the event log to the read tables. Only the instance holding the leader advisory lock
 * projects; the others retry the lock every pollMs, so a standby takes over when the leader's
 * session dies. Woken by NOTIFY events_appended, with a poll as safety net.
 */
export class Projector implements ProjectorRunner {
  /** The session that holds (leader) or tries for (standby) the advisory lock. */
  private session: SqlSession | undefined;
  private leading = false;
  private listener: Listener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Events applied by this projector (progress, for the held-back backoff below). */
  private appliedEvents = 0;
  private heldBackTimer: NodeJS.Timeout | undefined;
  private heldBackDelayMs = 0;
  private statuses: Map<string, ProjectionRunStatus> | undefined;
  private statusesReadAt = 0;
  // Not stopped until stop(): catchUp() must also work on a projector that never start()ed (CLI, tests).
  private stopped = false;
  private acquiring = false;

  constructor(
    private readonly db: Database,
    private readonly projections: Projection[],
    private readonly options: ProjectorOptions,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await ensureCheckpoints(
      this.db.sql,
      this.projections.map((p) => p.name),
    );
    await this.tryLead();
    this.timer = setInterval(() => (this.isLeader ? this.wake() : void this.tryLead()), this.options.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.heldBackTimer) clearTimeout(this.heldBackTimer);
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
    this.running = this.runAll().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Projects until every running projection has caught up with the committed log (CLI, tests). */
  async catchUp(): Promise<void> {
    await ensureCheckpoints(
      this.db.sql,
      this.projections.map((p) => p.name),
    );
    this.statuses = undefined;
    await this.runAll();
  }

  private async tryLead(): Promise<void> {
    if (this.stopped || this.isLeader || this.acquiring) return;
    this.acquiring = true;
    try {
      // A standby keeps its session between tries instead of reconnecting every poll.
      if (!this.session) {
        const opened: SqlSession = await this.db.openSession((error) => this.onSessionLost(opened, error));
        this.session = opened;
      }
      const session = this.session;
      const [row] = await session.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [
        LEADER_LOCK_KEY,
      ]);
      if (!row?.locked) return;
      const listener = await this.db.listen([EVENTS_APPENDED], {
        onNotify: () => this.wake(),
        onReconnect: () => this.wake(),
      });
      if (this.stopped || this.session !== session) {
        await listener.close(); // stopped, or the session died, while we were subscribing
        return;
      }
      this.listener = listener;
      this.leading = true;
      this.options.logger.info("projector: became leader");
      this.options.observer?.onLeadership?.(true);
      this.wake();
    } catch (error) {
      this.options.logger.warn({ err: error }, "projector: could not try for leadership");
      await this.resign();
    } finally {
      this.acquiring = false;
    }
  }

  private onSessionLost(session: SqlSession, error: Error): void {
    if (session !== this.session) return;
    if (this.leading) this.options.logger.warn({ err: error }, "projector: lost the leader session; will try again");
    void this.resign();
  }

  /** Gives up leadership (closing the session releases the lock) or the standby's session. */
  private async resign(): Promise<void> {
    const { session, listener, leading } = this;
    this.session = undefined;
    this.listener = undefined;
    this.leading = false;
    if (leading) this.options.observer?.onLeadership?.(false);
    await listener?.close().catch(() => undefined);
    await session?.close().catch(() => undefined);
  }

  private async runAll(): Promise<void> {
    try {
      const appliedBefore = this.appliedEvents;
      // Statuses change rarely (a poison event here, an operator's retry elsewhere): re-read them
      // on the poll, not on every wake-up. applyBatch re-checks under the checkpoint's lock.
      if (!this.statuses || Date.now() - this.statusesReadAt >= this.options.pollMs) {
        this.statuses = new Map((await listCheckpoints(this.db.sql)).map((c) => [c.name, c.status]));
        this.statusesReadAt = Date.now();
      }
      // Projections are independent (own checkpoint, own transaction): run them side by side.
      const statuses = this.statuses;
      const runs = await Promise.allSettled(
        this.projections.filter((p) => statuses.get(p.name) === "RUNNING").map((p) => this.runProjection(p)),
      );
      const failed = runs.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
      await this.recheckHeldBack(this.appliedEvents > appliedBefore);
    } catch (error) {
      this.options.logger.warn({ err: error }, "projector: run failed; the next poll retries");
    }
  }

  /**
   * Committed events that an older open transaction still holds back (gap safety) are read only
   * once it ends; if it never NOTIFYs us (a transaction of another database of the cluster, an
   * operator's session, a rebuild), nothing would wake us before the next poll. So look again
   * soon unless another run comes first, backing off from 5 ms to pollMs while no progress is made.
   */
  private async recheckHeldBack(progressed: boolean): Promise<void> {
    // The look is due only if no other run comes first (under load, NOTIFYs keep waking us anyway).
    clearTimeout(this.heldBackTimer);
    this.heldBackTimer = undefined;
    if (this.again) return; // another run follows at once and looks again
    if (this.stopped || !(await hasHeldBackEvents(this.db.sql))) {
      this.heldBackDelayMs = 0;
      return;
    }
    if (this.stopped) return;
    this.heldBackDelayMs =
      progressed || this.heldBackDelayMs === 0 ? 5 : Math.min(this.heldBackDelayMs * 2, this.options.pollMs);
    this.heldBackTimer = setTimeout(() => {
      this.heldBackTimer = undefined;
      this.wake();
    }, this.heldBackDelayMs);
    this.heldBackTimer.unref();
  }

  private async runProjection(projection: Projection): Promise<void> {
    let batchSize = this.options.batchSize;
    // After a failed batch, go one event at a time to find the poison event (or get past a flake).
    let singleStepsLeft = 0;
    while (!this.stopped) {
      try {
        const applied = await this.applyBatch(projection, batchSize);
        if (singleStepsLeft > 0 && --singleStepsLeft === 0) batchSize = this.options.batchSize;
        if (applied < batchSize) return;
      } catch (error) {
        const cause = error instanceof BatchError ? error.cause : error;
        if (isTransient(cause)) throw cause;
        if (batchSize > 1) {
          singleStepsLeft = batchSize;
          batchSize = 1;
          continue;
        }
        const first = error instanceof BatchError ? error.first : undefined;
        const message = String((cause as Error)?.message ?? cause);
        this.options.logger.error(
          { err: cause, projection: projection.name, position: first?.position?.toString() },
          "projector: poison event; projection halted",
        );
        await markFailed(this.db.sql, projection.name, message, first?.position ?? 0n);
        this.statuses?.set(projection.name, "FAILED");
        this.options.observer?.onFailed?.(projection.name);
        return;
      }
    }
  }

  /** One transaction: rows + checkpoint + NOTIFY read_changed. Returns the number of events read. */
  private async applyBatch(projection: Projection, limit: number): Promise<number> {
    const started = performance.now();
    let first: RecordedEvent | undefined;
    try {
      const count = await this.db.transaction(async (sql) => {
        const { checkpoint, events } = await lockCheckpointAndReadEvents(sql, projection.name, limit);
        if (!checkpoint || checkpoint.status !== "RUNNING") return 0;
        first = events[0];
        const last = events.at(-1);
        if (!last) return 0;
        const { changes, written } = projection.apply(sql, events, projection.tables);
        written.catch(() => undefined); // awaited below, with the checkpoint
        await this.options.beforeCheckpoint?.(projection.name, events);
        // Sent right behind the rows, one round trip for both.
        await inIssueOrder(written, saveCheckpoint(sql, projection.name, last, "RUNNING", changes));
        return events.length;
      }, PROJECTION_COMMIT);
      this.appliedEvents += count;
      if (count > 0) this.options.observer?.onBatch?.(projection.name, count, (performance.now() - started) / 1000);
      return count;
    } catch (error) {
      throw new BatchError(error, first);
    }
  }
}
