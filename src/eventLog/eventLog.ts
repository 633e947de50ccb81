import type { Sql } from "../db/database";
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
  sql: Sql,
  events: NewEvent[],
  metadata: EventMetadata,
  occurredAt: Date,
): Promise<LogPosition> {
  if (events.length === 0) throw new Error("appendEvents: no events");
  try {
    // One fixed statement whatever the number of events (arrays, unnested in order).
    const appended = await sql.query<{ position: string; tx_id: string }>(
      `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
       SELECT stream_id, stream_type, stream_version, type, data, $6::jsonb, $7::timestamptz
         FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::jsonb[]) WITH ORDINALITY AS e(stream_id, stream_type, stream_version, type, data, n)
        ORDER BY n
       RETURNING position, tx_id::text AS tx_id`,
      [
        events.map((e) => e.streamId),
        events.map((e) => e.streamType),
        events.map((e) => e.streamVersion),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.data)),
        JSON.stringify(metadata),
        occurredAt,
      ],
    );
    const last = appended.reduce((a, b) => (BigInt(b.position) > BigInt(a.position) ? b : a));
    return { txId: BigInt(last.tx_id), position: BigInt(last.position) };
  } catch (error) {
    if (sqlState(error) === "23505") throw new ConcurrencyError();
    throw error;
  }
}

export interface EventRow {
  position: string;
  tx_id: string;
  stream_id: string;
  stream_type: string;
  stream_version: number;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  occurred_at: Date;
}

export function toRecorded(row: EventRow): RecordedEvent {
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
export async function readEventsAfter(sql: Sql, after: LogPosition, limit: number): Promise<RecordedEvent[]> {
  const rows = await sql.query<EventRow>(eventsAfterSql("$1::text::xid8", "$2::bigint", "$3::int"), [
    after.txId.toString(),
    after.position,
    limit,
  ]);
  return rows.map(toRecorded);
}

/**
 * readEventsAfter as SQL with the position and limit given as SQL expressions, to embed in a
 * statement that finds the position itself (the projector's: lock the checkpoint, read after it).
 * Within one statement the snapshot is one, so the xmin filter holds as in readEventsAfter.
 */
export function eventsAfterSql(afterTxId: string, afterPosition: string, limit: string): string {
  // ORDER BY names the table's columns (e.): a bare tx_id would mean the text output column,
  // sorting '100' before '99' (skipping events) and defeating the index (a sort of the whole tail).
  return `SELECT e.position, e.tx_id::text AS tx_id, e.stream_id::text AS stream_id, e.stream_type, e.stream_version, e.type, e.data, e.metadata, e.occurred_at
       FROM "write"."events" AS e
      WHERE (e.tx_id, e.position) > (${afterTxId}, ${afterPosition})
        AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY e.tx_id, e.position
      LIMIT ${limit}`;
}

/**
 * True when committed events exist that readEventsAfter still holds back because an older
 * transaction (of any database of the cluster) is open: their tx_id is not below xmin yet.
 */
export async function hasHeldBackEvents(sql: Sql): Promise<boolean> {
  // Asked as "is the newest tx_id at or above xmin": max() reads one entry at the end of the
  // (tx_id, position) index whatever the statistics say. "EXISTS (... WHERE tx_id >= xmin)" was
  // planned as a scan of the whole log, the snapshot taken again for every row, wherever the
  // table had not been analyzed yet (20 ms at 100,000 events, after every projector batch).
  const [row] = await sql.query<{ held: boolean }>(
    `SELECT COALESCE((SELECT max(tx_id) FROM "write"."events") >= pg_snapshot_xmin(pg_current_snapshot()), false) AS held`,
  );
  return row?.held === true;
}

export interface Backlog {
  events: number;
  /** Age of the oldest committed event after `after` (events held back by an older open transaction count). */
  oldestAgeSeconds: number;
}

/** How far a reader at `after` is behind the committed log. */
export async function backlogAfter(sql: Sql, after: LogPosition): Promise<Backlog> {
  const [row] = await sql.query<{ events: string; oldest: Date | null }>(
    `SELECT count(*)::bigint AS events, min(occurred_at) AS oldest
       FROM "write"."events" WHERE (tx_id, position) > ($1::text::xid8, $2::bigint)`,
    [after.txId.toString(), after.position],
  );
  const oldest = row?.oldest ? new Date(row.oldest).getTime() : undefined;
  return {
    events: Number(row?.events ?? 0),
    oldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
  };
}

/** The last event a transaction appended (to answer a replayed command with the first outcome). */
export async function lastEventOfTransaction(
  sql: Sql,
  txId: bigint,
): Promise<{ streamId: string; position: LogPosition } | undefined> {
  const [row] = await sql.query<{ position: string; tx_id: string; stream_id: string }>(
    `SELECT position, tx_id::text AS tx_id, stream_id::text AS stream_id FROM "write"."events"
      WHERE tx_id = $1::text::xid8 ORDER BY position DESC LIMIT 1`,
    [txId.toString()],
  );
  return row && { streamId: row.stream_id, position: { txId: BigInt(row.tx_id), position: BigInt(row.position) } };
}
