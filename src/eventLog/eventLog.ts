import type { SqlSession, Tx } from "../db/database";
import { sqlState } from "../shared/errors";
import type { EventMetadata, LogPosition, NewEvent, RecordedEvent } from "../shared/events";

/** Another command appended to the same stream first; the bus retries the command from fresh state. */
export class ConcurrencyError extends Error {
  constructor(message = "stream was changed concurrently") {
    super(message);
    this.name = "ConcurrencyError";
  }
}

/**
 * Appends events inside the command's transaction. The table's trigger NOTIFYs
 * `events_appended`, delivered only if the transaction commits.
 */
export async function appendEvents(
  tx: Tx,
  events: NewEvent[],
  metadata: EventMetadata,
  occurredAt: Date,
): Promise<LogPosition> {
  if (events.length === 0) throw new Error("appendEvents: no events");
  const params: unknown[] = [];
  const rows = events.map((e) => {
    const base = params.length;
    params.push(e.streamId, e.streamType, e.streamVersion, e.type, JSON.stringify(e.data), JSON.stringify(metadata), occurredAt);
    return `($${base + 1}::uuid, $${base + 2}, $${base + 3}::int, $${base + 4}, $${base + 5}::jsonb, $${base + 6}::jsonb, $${base + 7}::timestamptz)`;
  });
  try {
    const appended = await tx.$queryRawUnsafe<{ position: bigint; tx_id: string }[]>(
      `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
       VALUES ${rows.join(", ")}
       RETURNING position, tx_id::text AS tx_id`,
      ...params,
    );
    const last = appended.reduce((a, b) => (b.position > a.position ? b : a));
    return { txId: BigInt(last.tx_id), position: BigInt(last.position) };
  } catch (error) {
    if (sqlState(error) === "23505") throw new ConcurrencyError();
    throw error;
  }
}

/** Prisma (a client or a transaction) or any runner with the same raw-query signature (a SqlSession, see sessionReader). */
export interface SqlReader {
  $queryRawUnsafe<T = unknown>(sql: string, ...values: unknown[]): Promise<T>;
}

/** Reads through a dedicated session: plain driver rows, without Prisma's per-row conversion (bulk reads). */
export function sessionReader(session: SqlSession): SqlReader {
  return { $queryRawUnsafe: <T>(sql: string, ...values: unknown[]) => session.query(sql, values) as Promise<T> };
}

interface EventRow {
  position: bigint;
  tx_id: string;
  stream_id: string;
  stream_type: string;
  stream_version: number;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  occurred_at: Date;
}

function toRecorded(row: EventRow): RecordedEvent {
  return {
    position: BigInt(row.position),
    txId: BigInt(row.tx_id),
    streamId: row.stream_id,
    streamType: row.stream_type,
    streamVersion: row.stream_version,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    occurredAt: new Date(row.occurred_at),
  };
}

/**
 * Reads the events after `after`, gap-safely. Positions are taken before commit, so a later
 * position can commit before an earlier one; a reader that remembered only "last position"
 * would skip the earlier one forever. Reading in (tx_id, position) order and only below the
 * snapshot's xmin (every transaction older than that has finished) means no event that can
 * still appear is ever behind the returned ones.
 */
export async function readEventsAfter(
  db: SqlReader,
  after: LogPosition,
  limit: number,
): Promise<RecordedEvent[]> {
  const rows = await db.$queryRawUnsafe<EventRow[]>(
    // ORDER BY names the table's columns (e.): a bare tx_id would mean the text output column,
    // sorting '100' before '99' (skipping events) and defeating the index (a sort of the whole tail).
    `SELECT e.position, e.tx_id::text AS tx_id, e.stream_id::text AS stream_id, e.stream_type, e.stream_version, e.type, e.data, e.metadata, e.occurred_at
       FROM "write"."events" AS e
      WHERE (e.tx_id, e.position) > ($1::text::xid8, $2::bigint)
        AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY e.tx_id, e.position
      LIMIT $3::int`,
    after.txId.toString(),
    after.position,
    limit,
  );
  return rows.map(toRecorded);
}

/**
 * True when committed events exist that readEventsAfter still holds back because an older
 * transaction (of any database of the cluster) is open: their tx_id is not below xmin yet.
 */
export async function hasHeldBackEvents(db: Pick<Tx, "$queryRawUnsafe">): Promise<boolean> {
  const [row] = await db.$queryRawUnsafe<{ held: boolean }[]>(
    `SELECT EXISTS (SELECT 1 FROM "write"."events" WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())) AS held`,
  );
  return row?.held === true;
}

export interface Backlog {
  events: number;
  /** Age of the oldest committed event after `after` (events held back by an older open transaction count). */
  oldestAgeSeconds: number;
}

/** How far a reader at `after` is behind the committed log. */
export async function backlogAfter(db: Pick<Tx, "$queryRawUnsafe">, after: LogPosition): Promise<Backlog> {
  const [row] = await db.$queryRawUnsafe<{ events: bigint; oldest: Date | null }[]>(
    `SELECT count(*)::bigint AS events, min(occurred_at) AS oldest
       FROM "write"."events" WHERE (tx_id, position) > ($1::text::xid8, $2::bigint)`,
    after.txId.toString(),
    after.position,
  );
  const oldest = row?.oldest ? new Date(row.oldest).getTime() : undefined;
  return {
    events: Number(row?.events ?? 0),
    oldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
  };
}

/** The last event a transaction appended (to answer a replayed command with the first outcome). */
export async function lastEventOfTransaction(db: SqlReader, txId: bigint): Promise<{ streamId: string; position: LogPosition } | undefined> {
  const [row] = await db.$queryRawUnsafe<{ position: bigint; tx_id: string; stream_id: string }[]>(
    `SELECT position, tx_id::text AS tx_id, stream_id::text AS stream_id FROM "write"."events"
      WHERE tx_id = $1::text::xid8 ORDER BY position DESC LIMIT 1`,
    txId.toString(),
  );
  return row && { streamId: row.stream_id, position: { txId: BigInt(row.tx_id), position: BigInt(row.position) } };
}
