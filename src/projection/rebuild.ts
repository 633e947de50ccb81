import { hostname } from "node:os";
import type { Database, Sql, Tx } from "../db/database";
import { sql, type Identifier } from "../db/sql";
import type { Logger } from "../logger";
import { comparePositions, LOG_START, positionOf, type LogPosition, type RecordedEvent } from "../shared/events";
import { foreignTransactions, readEventsAfter, type ForeignTransactions } from "../write/eventLog/eventLog";
import {
  deleteCheckpoint,
  lockCheckpoint,
  markFailed,
  resetCheckpoint,
  saveCheckpoint,
  type Checkpoint,
} from "./checkpoints";
import { PROJECTION_LEASES } from "./leases";
import { wakeProjectors, type EventSource } from "./logSource";
import { projectBatch, type AnyProjection, type TableMap } from "./projection";

export interface RebuildResult {
  /** Events read from the log (every projection rebuilt applied all of them). */
  events: number;
  seconds: number;
  /** Seconds each projection's batch transactions took, side by side with the others' (the slowest sets the pace). */
  perProjection: { name: string; batchSeconds: number }[];
}

export interface RebuildOptions {
  batchSize: number;
  logger: Logger;
  /** The database whose event log is read; default the one rebuilt into. */
  log?: Database;
  /** Read the events from this source instead of a database's log (the event stream on NATS). */
  source?: EventSource;
  /** Who rebuilds, as the projections query shows the leader of "<name>@rebuild"; default rebuild@host:pid. */
  instanceId?: string;
}

interface Target {
  projection: AnyProjection;
  shadowTables: TableMap;
  /** The rebuild's own checkpoint, "<name>@rebuild". */
  checkpoint: string;
  batchMs: number;
}

const shadowOf = (table: Identifier) => sql.identifier(...table.parts.slice(0, -1), `${table.name}__rebuild`);

/** Rebuilds one projection: see rebuildProjections. */
export function rebuildProjection(
  db: Database,
  projection: AnyProjection,
  options: RebuildOptions,
): Promise<RebuildResult> {
  return rebuildProjections(db, [projection], options);
}

/**
 * Rebuilds projections from position 0 into copies of their tables while the live tables keep
 * serving, then swaps them all in one short transaction:
 *   1. CREATE TABLE <t>__rebuild (LIKE <t> INCLUDING ALL), checkpoint "<name>@rebuild" at 0;
 *   2. read the whole log ONCE, in batches (gap-safe, like the projector), and apply each batch
 *      to every projection side by side, each in its own transaction (own connection, so the
 *      database uses more than one core), while the next batch is being read;
 *   3. build the secondary indexes, side by side;
 *   4. lock the live checkpoints (the projector waits), apply what arrived meanwhile, rename the
 *      copies over the live tables (index names restored), move the checkpoints, drop the old.
 * A failure anywhere leaves every live table as it was; a rerun starts over from fresh copies.
 */
export async function rebuildProjections(
  db: Database,
  projections: AnyProjection[],
  options: RebuildOptions,
): Promise<RebuildResult> {
  const started = performance.now();
  const names = projections.map((p) => p.name);
  if (names.length === 0 || new Set(names).size !== names.length)
    throw new Error(`rebuild: expected distinct projections, got [${names.join(", ")}]`);
  const targets: Target[] = projections.map((projection) => ({
    projection,
    shadowTables: Object.fromEntries(Object.entries(projection.tables).map(([k, v]) => [k, shadowOf(v)])),
    checkpoint: `${projection.name}@rebuild`,
    batchMs: 0,
  }));
  const lockSession = await db.openSession();
  try {
    // The rebuild leads its copies as a projector leads a projection: by the lease of
    // "<name>@rebuild", whose holder the projections query names. Only the holder writes the
    // copies: a second rebuild of it stops here, before touching the copies or the checkpoint
    // of the one running. (The live projection keeps its leader until the swap, which locks its
    // checkpoint row: the live projector waits for the swap, then reads the checkpoint again.)
    await lockSession.query(
      sql`SELECT set_config('application_name', ${options.instanceId ?? `rebuild@${hostname()}:${process.pid}`}, false)`,
    );
    for (const t of targets) {
      const [lock] = await lockSession.query(
        sql<{
          locked: boolean;
        }>`SELECT pg_try_advisory_lock(${PROJECTION_LEASES}::int, hashtext(${t.checkpoint})) AS locked`,
      );
      if (!lock?.locked) throw new Error(`a rebuild of ${t.projection.name} is already running`);
    }
    try {
      // Through the lock's own session when the log is in this database: see Reader.
      const log = options.log && options.log !== db ? options.log.sql : undefined;
      // Transactions open in other databases of the server at the first read, left out of the
      // horizon (see eventLog.ts): one left open elsewhere would hold the whole rebuild back.
      // Looked at again for the swap, as the live projector looks at them for each of its reads: a
      // transaction opened elsewhere since would otherwise hold the swap behind the live projection.
      let foreign: Promise<ForeignTransactions> | undefined;
      let foreignAtSwap: Promise<ForeignTransactions> | undefined;
      const leftOut = (swap?: Tx) =>
        swap
          ? (foreignAtSwap ??= foreignTransactions(log ?? swap))
          : (foreign ??= foreignTransactions(log ?? lockSession));
      const reader: Reader = options.source
        ? (after, limit) => options.source!.readAfter(after, limit)
        : async (after, limit, swap) => readEventsAfter(log ?? swap ?? lockSession, after, limit, await leftOut(swap));
      const events = await fillCopies(db, reader, targets, options);
      // The projectors listen on the event log's database: wake them there, now that the swap is
      // in. Only sooner than their poll would: the rebuild has succeeded whatever this answers.
      // (Projectors fed from the stream find the new checkpoint on their next poll.)
      if (!options.source) await wakeProjectors(log ?? db.sql).catch(() => undefined);
      return {
        events,
        seconds: (performance.now() - started) / 1000,
        perProjection: targets.map((t) => ({ name: t.projection.name, batchSeconds: t.batchMs / 1000 })),
      };
    } catch (error) {
      // The live tables were never touched. Drop the copies (a crash leaves them: the rerun drops
      // them first) and say why on the rebuild's own checkpoints, for `projections status`.
      const message = String((error as Error)?.message ?? error);
      for (const t of targets) {
        for (const shadow of Object.values(t.shadowTables))
          await db.sql.query(sql`DROP TABLE IF EXISTS ${shadow}`).catch(() => undefined);
        await markFailed(db.sql, t.checkpoint, message, null).catch(() => undefined);
      }
      throw error;
    }
  } finally {
    await lockSession.close();
  }
}

/**
 * Reads the events after a position, in the log's reading order. The swap's last catch-up passes
 * its transaction: a log in the same database is read inside it (an embedded database has one
 * connection: a read beside the transaction would wait for it); one elsewhere (another
 * database's log, the event stream) is read there as always.
 */
type Reader = (after: LogPosition, limit: number, swap?: Tx) => Promise<RecordedEvent[]>;

/** Fills the copies from the log through `reader`, builds their indexes, and swaps them in. */
async function fillCopies(db: Database, reader: Reader, targets: Target[], options: RebuildOptions): Promise<number> {
  const names = targets.map((t) => t.projection.name);
  await db.transaction(async (tx) => {
    for (const t of targets) {
      for (const [logical, live] of Object.entries(t.projection.tables)) {
        const shadow = t.shadowTables[logical]!;
        await tx.query(sql`DROP TABLE IF EXISTS ${shadow}`);
        await tx.query(sql`CREATE TABLE ${shadow} (LIKE ${live} INCLUDING ALL)`);
        // Secondary indexes are built once at the end, not maintained row by row while filling.
        for (const index of await secondaryIndexes(tx, shadow))
          await tx.query(sql`DROP INDEX ${sql.identifier("read", index.name)}`);
      }
      await tx.query(resetCheckpoint(t.checkpoint, "REBUILDING"));
    }
  });

  // Catch up outside the swap, batch by batch, so the live tables are locked only briefly. Only
  // this rebuild writes the copies (advisory locks), so the log is read outside the batches'
  // transactions, through the lock's own session: the next batch is read while the projections
  // apply this one.
  let events = 0;
  let batches = 0;
  let at: LogPosition = LOG_START;
  // A small first batch, so that the projections start while the first full one is being read.
  let limit = Math.ceil(options.batchSize / 10);
  let next = prefetch(reader, at, limit);
  for (;;) {
    const batch = await next;
    const last = batch.at(-1);
    const full = batch.length === limit;
    limit = options.batchSize;
    if (last && full) next = prefetch(reader, last, limit);
    if (last) {
      await settleAll(
        targets.map((t) => timed(t, () => db.transaction((tx) => tx.commit(projectInto(t, batch)), COPY_COMMIT))),
      );
      at = { txId: last.txId, position: last.position };
      events += batch.length;
    }
    if (!full) break;
    if (++batches % 20 === 0) options.logger.info({ projections: names, events }, "rebuild: progress");
  }

  // One statement (one transaction) per index, so the database builds them side by side.
  const builds: string[] = [];
  for (const t of targets) {
    for (const [logical, live] of Object.entries(t.projection.tables)) {
      for (const index of await secondaryIndexes(db.sql, live)) {
        builds.push(
          index.def.replace(
            /^CREATE (UNIQUE )?INDEX \S+ ON \S+ /,
            `CREATE $1INDEX "${index.name}__rb" ON ${t.shadowTables[logical]!.text} `,
          ),
        );
      }
    }
  }
  await settleAll(builds.map((build) => db.sql.query(build)));

  await db.transaction(async (tx) => {
    // Same order in every rebuild; the projector locks one checkpoint at a time.
    const live: Checkpoint[] = [];
    for (const name of [...names].sort()) {
      const checkpoint = await lockCheckpoint(tx, name);
      if (!checkpoint) throw new Error(`unknown projection ${name}`);
      live.push(checkpoint);
    }
    for (;;) {
      const batch = await reader(at, options.batchSize, tx);
      const last = batch.at(-1);
      if (!last) break;
      for (const t of targets) await tx.run(projectInto(t, batch));
      at = { txId: last.txId, position: last.position };
      events += batch.length;
      if (batch.length < options.batchSize) break;
    }
    // Never behind the live projection: its tables, and the checkpoint the API instances wait on,
    // would go back. (The live tables are untouched: the rebuild fails, and can be run again.)
    for (const c of live) {
      if (comparePositions(at, c) < 0)
        throw new Error(
          `the rebuild reached (${at.txId}, ${at.position}) but ${c.name} is at (${c.txId}, ${c.position}): run it again`,
        );
    }
    for (const t of targets) {
      for (const [logical, liveTable] of Object.entries(t.projection.tables))
        await swapTable(tx, liveTable, t.shadowTables[logical]!);
      await tx.run([saveCheckpoint(t.projection.name, at, "RUNNING", true), deleteCheckpoint(t.checkpoint)]);
    }
  });
  return events;
}

/** Starts a read ahead; its failure surfaces where it is awaited (not as an unhandled rejection meanwhile). */
function prefetch(reader: Reader, after: LogPosition, limit: number): Promise<RecordedEvent[]> {
  const read = reader(after, limit);
  read.catch(() => undefined);
  return read;
}

/** Waits for every one (no transaction is left running), then fails with the first failure. */
async function settleAll(runs: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(runs)).find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

async function timed<T>(target: Target, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    target.batchMs += performance.now() - started;
  }
}

/**
 * A batch that only fills the copies need not wait for its WAL to reach the disk: a crash loses
 * at most the last batches, rows and checkpoint together, and a rerun starts over anyway. The
 * swap's transaction commits synchronously, flushing everything before it.
 */
const COPY_COMMIT = { asyncCommit: true } as const;

/** A batch into a target's copies, with the rebuild's own checkpoint. */
function projectInto(target: Target, events: RecordedEvent[]) {
  const { statements } = projectBatch(target.projection, events, target.shadowTables);
  return [...statements, saveCheckpoint(target.checkpoint, positionOf(events.at(-1)!), "REBUILDING")];
}

/** Indexes that back no constraint (not the primary key, not unique), with their definitions. */
function secondaryIndexes(db: Sql, table: Identifier) {
  return db.query(sql<{ name: string; def: string }>`
    SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = ${table.text}::regclass AND NOT i.indisprimary AND NOT i.indisunique`);
}

/** Renames the rebuilt table over the live one and gives its indexes the live indexes' names. */
async function swapTable(tx: Tx, live: Identifier, shadow: Identifier): Promise<void> {
  const indexes = async (table: Identifier) =>
    tx.query(sql<{ name: string; def: string }>`
      SELECT indexname AS name, regexp_replace(indexdef, '^CREATE (UNIQUE )?INDEX \\S+ ON \\S+ ', '') AS def
        FROM pg_indexes WHERE schemaname = ${table.parts[0]} AND tablename = ${table.name}`);
  const liveIndexes = await indexes(live);
  const shadowIndexes = await indexes(shadow);
  await tx.query(sql`DROP TABLE ${live}`);
  await tx.query(sql`ALTER TABLE ${shadow} RENAME TO ${sql.identifier(live.name)}`);
  for (const index of shadowIndexes) {
    const original = liveIndexes.find((l) => l.def === index.def);
    if (original && original.name !== index.name) {
      await tx.query(
        sql`ALTER INDEX ${sql.identifier(live.parts[0]!, index.name)} RENAME TO ${sql.identifier(original.name)}`,
      );
    }
  }
}
