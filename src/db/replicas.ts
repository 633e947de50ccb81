import type { Logger } from "../logger";
import { isConnectionError } from "../shared/errors";
import type { Database, Sql } from "./database";
import type { Statement } from "./sql";

/** A WAL position ("16/B374D848") as a number that compares. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split("/");
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/** What the router knows of one replica. */
export interface ReplicaStatus {
  /** Where it is (URL without password). */
  name: string;
  /** It answered the last look, as a standby. */
  up: boolean;
  /** Its replay position, as last seen. */
  replayLsn: bigint | null;
  /** WAL the primary has inserted that the replica has not replayed, as of the last look. */
  lagBytes: number;
  /** How old the replica's data is: since the primary was where the replica is now (0 when caught up). */
  lagSeconds: number;
  /** Queries may read from it now. */
  serving: boolean;
}

interface Replica {
  db: Database;
  name: string;
  up: boolean;
  replayLsn: bigint | null;
}

interface Sample {
  at: number;
  /** pg_current_wal_insert_lsn(): past every commit the primary had made when asked. */
  insert: bigint;
  /** pg_current_wal_flush_lsn(): what a replica can have received. */
  flush: bigint;
}

export interface ReadReplicasObserver {
  onRead?(target: string): void;
}

export interface ReadReplicasOptions {
  /** How often the primary's and the replicas' WAL positions are looked at. */
  pollMs: number;
  logger: Logger;
}

/** A replica that has not answered a look or a query within this long is taken out of service. */
const REPLICA_TIMEOUT_MS = 2000;
/** Seconds of samples kept to tell how old a replica's data is. */
const HISTORY_MS = 120_000;

/**
 * Streaming replicas of the read database, and which reads may go to them.
 *
 * Every pollMs it asks the primary where its WAL is and each replica how far it has replayed.
 * A replica serves queries while it answers and has replayed everything the primary had flushed
 * at the previous look (so it is at most about two polls behind): `sql` picks one of those, in
 * turn, else the primary. A query that fails on a replica for want of a connection, or takes
 * longer than REPLICA_TIMEOUT_MS, runs again on the primary (reads only), and that replica is
 * out until it answers a look again: a replica that is down or far behind is never waited on.
 *
 * Read-your-writes: a reader (an actor) that wrote through this instance reads from the primary
 * until a look taken after its write has found the primary's WAL position, and every serving
 * replica has replayed past it (see `wrote` and `servesReader`).
 */
export class ReadReplicas {
  readonly replicas: Replica[];
  /** The reads that may go to a serving replica. */
  readonly sql: Sql;
  /** Reads of the query side that must see the primary (a writer's, until the replicas have its write), counted. */
  readonly primarySql: Sql;
  private readonly samples: Sample[] = [];
  /** Looks sent so far; a writer's floor is the insert position found by a look sent after its write. */
  private sent = 0;
  /** Writers whose writes a replica may not have yet: the look that will tell, then its position. */
  private readonly writers = new Map<string, { look: number; floor?: bigint }>();
  private timer: NodeJS.Timeout | undefined;
  private looking: Promise<void> | undefined;
  private next = 0;
  private observer: ReadReplicasObserver | undefined;

  constructor(
    private readonly primary: Database,
    replicas: Database[],
    private readonly options: ReadReplicasOptions,
  ) {
    this.replicas = replicas.map((db) => ({ db, name: db.location, up: false, replayLsn: null }));
    this.sql = {
      query: (statement: Statement<unknown> | string, params?: unknown[]) => this.read(statement, params),
    } as Sql;
    this.primarySql = {
      query: (statement: Statement<unknown> | string, params?: unknown[]) => this.readPrimary(statement, params),
    } as Sql;
  }

  observe(observer: ReadReplicasObserver): void {
    this.observer = observer;
  }

  async start(): Promise<void> {
    await this.look();
    this.timer = setInterval(() => void this.look(), this.options.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.looking;
  }

  /** Whether `reader` may read through the replicas: not while it wrote something they may not have yet. */
  servesReader(reader: string | undefined): boolean {
    if (this.replicas.length === 0) return false;
    if (reader === undefined) return true;
    const writer = this.writers.get(reader);
    if (!writer) return true;
    const floor = this.floor();
    if (writer.floor === undefined || floor === undefined || floor < writer.floor) return false;
    this.writers.delete(reader);
    return true;
  }

  /** `reader`'s write is visible on the primary: its reads stay there until the replicas have it too. */
  wrote(reader: string): void {
    if (this.replicas.length > 0) this.writers.set(reader, { look: this.sent + 1 });
  }

  statuses(): ReplicaStatus[] {
    const latest = this.samples.at(-1);
    const floor = this.floor();
    return this.replicas.map((r) => ({
      name: r.name,
      up: r.up,
      replayLsn: r.replayLsn,
      lagBytes: latest && r.replayLsn !== null ? Math.max(0, Number(latest.insert - r.replayLsn)) : 0,
      lagSeconds: this.lagSeconds(r),
      serving: this.serves(r, floor),
    }));
  }

  /** What a replica must have replayed to serve: what the primary had flushed at the look before the last. */
  private floor(): bigint | undefined {
    return this.samples.at(-2)?.flush;
  }

  private serves(r: Replica, floor: bigint | undefined): boolean {
    return r.up && r.replayLsn !== null && floor !== undefined && r.replayLsn >= floor;
  }

  private lagSeconds(r: Replica): number {
    const latest = this.samples.at(-1);
    if (!latest || r.replayLsn === null) return 0;
    if (r.replayLsn >= latest.insert) return 0;
    // The newest look at which the primary was no further than the replica is now.
    for (let i = this.samples.length - 1; i >= 0; i--) {
      if (this.samples[i]!.insert <= r.replayLsn) return (latest.at - this.samples[i]!.at) / 1000;
    }
    return (latest.at - this.samples[0]!.at) / 1000;
  }

  private readPrimary(statement: Statement<unknown> | string, params?: unknown[]): Promise<unknown[]> {
    this.observer?.onRead?.("primary");
    return this.primary.sql.query(statement as string, params);
  }

  private async read(statement: Statement<unknown> | string, params?: unknown[]): Promise<unknown[]> {
    const replica = this.pick();
    if (!replica) return this.readPrimary(statement, params);
    try {
      const rows = await withTimeout(replica.db.sql.query(statement as string, params), REPLICA_TIMEOUT_MS);
      this.observer?.onRead?.(replica.name);
      return rows;
    } catch (error) {
      if (!(error instanceof ReplicaTimeout) && !isConnectionError(error)) throw error;
      this.takeOut(replica, error);
      return this.readPrimary(statement, params);
    }
  }

  /** The serving replicas in turn; undefined when none serves. */
  private pick(): Replica | undefined {
    const floor = this.floor();
    for (let i = 0; i < this.replicas.length; i++) {
      const r = this.replicas[(this.next + i) % this.replicas.length]!;
      if (this.serves(r, floor)) {
        this.next = (this.next + i + 1) % this.replicas.length;
        return r;
      }
    }
    return undefined;
  }

  private takeOut(r: Replica, error: unknown): void {
    if (r.up) this.options.logger.warn({ err: error, replica: r.name }, "read replica out of service");
    r.up = false;
  }

  private look(): Promise<void> {
    this.looking ??= this.lookNow().finally(() => (this.looking = undefined));
    return this.looking;
  }

  private async lookNow(): Promise<void> {
    const look = ++this.sent;
    const [primary, ...replicas] = await Promise.allSettled([
      withTimeout(
        this.primary.sql.query<{ insert: string; flush: string }>(
          `SELECT pg_current_wal_insert_lsn()::text AS insert, pg_current_wal_flush_lsn()::text AS flush`,
        ),
        REPLICA_TIMEOUT_MS,
      ),
      ...this.replicas.map((r) =>
        withTimeout(
          r.db.sql.query<{ replay: string | null; standby: boolean }>(
            `SELECT pg_last_wal_replay_lsn()::text AS replay, pg_is_in_recovery() AS standby`,
          ),
          REPLICA_TIMEOUT_MS,
        ),
      ),
    ]);
    this.replicas.forEach((r, i) => {
      const result = replicas[i]!;
      const row = result.status === "fulfilled" ? result.value[0] : undefined;
      if (!row?.standby || row.replay === null) {
        // Down, or promoted (then it is no longer a copy of this primary): out of service.
        this.takeOut(r, result.status === "rejected" ? result.reason : new Error("not a standby"));
        return;
      }
      if (!r.up) this.options.logger.info({ replica: r.name }, "read replica in service");
      r.up = true;
      r.replayLsn = parseLsn(row.replay);
    });
    if (primary.status === "rejected") {
      this.options.logger.warn({ err: primary.reason }, "read replicas: could not ask the primary where its WAL is");
      return;
    }
    const row = primary.value[0]!;
    const sample = { at: Date.now(), insert: parseLsn(row.insert), flush: parseLsn(row.flush) };
    this.samples.push(sample);
    while (this.samples.length > 2 && sample.at - this.samples[0]!.at > HISTORY_MS) this.samples.shift();
    const floor = this.floor();
    for (const [reader, writer] of this.writers) {
      if (writer.floor === undefined && look >= writer.look) writer.floor = sample.insert;
      else if (writer.floor !== undefined && floor !== undefined && floor >= writer.floor) this.writers.delete(reader);
    }
  }
}

class ReplicaTimeout extends Error {}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReplicaTimeout(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
