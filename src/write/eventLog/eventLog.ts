import type { Sql } from "../../db/database";
import { sql, type Statement } from "../../db/sql";
import { sqlState } from "../../shared/errors";
import type { EventMetadata, LogPosition, NewEvent, RecordedEvent } from "../../shared/events";
import type { KeyRecord } from "../idempotency";

/**
 * The event log, write.events: appended in the command's transaction (the outbox), read
 * gap-safely by the projector. The table's trigger NOTIFYs `events_appended` on commit.
 */

/** The append found the stream at another version: another command changed it first. */
export function isStreamConflict(error: unknown): boolean {
  return (
    sqlState(error) === "23505" &&
    (error as { constraint?: unknown }).constraint === "events_stream_id_stream_version_key"
  );
}

export interface Appended {
  /** The position of the last event appended. */
  position: string;
  tx_id: string;
}

/**
 * Appends events in the command's transaction: one fixed statement whatever their number
 * (arrays, unnested in order). With `key`, the command's idempotency key is stored in the same
 * statement, with its result and the position of its last event.
 */
export function appendEvents(
  events: NewEvent[],
  metadata: EventMetadata,
  occurredAt: Date,
  key?: KeyRecord,
): Statement<Appended> {
  return sql<Appended>`
    WITH appended AS (
      INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
      SELECT stream_id, stream_type, stream_version, type, data, ${JSON.stringify(metadata)}::jsonb, ${occurredAt}::timestamptz
        FROM unnest(${events.map((e) => e.streamId)}::uuid[], ${events.map((e) => e.streamType)}::text[],
                    ${events.map((e) => e.streamVersion)}::int[], ${events.map((e) => e.type)}::text[],
                    ${events.map((e) => JSON.stringify(e.data))}::jsonb[])
             WITH ORDINALITY AS e(stream_id, stream_type, stream_version, type, data, n)
       ORDER BY n
      RETURNING position, tx_id
    ), last AS (
      SELECT position, tx_id FROM appended ORDER BY position DESC LIMIT 1
    ), kept AS (
      INSERT INTO "write"."command_keys" (actor_id, command, key, request_hash, created_at, result, position)
      SELECT ${key?.actorId ?? null}, ${key?.command ?? null}, ${key?.key ?? null}, ${key?.requestHash ?? null},
             ${key?.now ?? null}::timestamptz, ${key === undefined ? null : JSON.stringify(key.result)}::jsonb, last.position
        FROM last WHERE ${key !== undefined}::boolean
    )
    SELECT position::text AS position, tx_id::text AS tx_id FROM last`;
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
 * Transactions running in other databases of the server, as a reader last looked
 * (foreignTransactions): full 64-bit ids, which are never reused, so a list of any age names
 * only other databases' transactions. A reader leaves them out of its horizon.
 */
export type ForeignTransactions = readonly string[];

/**
 * The gap-safe horizon, in the statement's snapshot: the oldest transaction still running that
 * is not known to be another database's, or the snapshot's xmax when there is none. Every
 * transaction below it has finished, or runs in another database and cannot append to this log.
 * Transaction ids are server-wide, and the snapshot's own xmin is the whole server's: without
 * `foreign`, one transaction left open in any database holds every reader back.
 */
const horizon = (foreign: ForeignTransactions) => sql.fragment`COALESCE(
  (SELECT min(x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x WHERE x <> ALL(${foreign}::text[]::xid8[])),
  pg_snapshot_xmax(pg_current_snapshot()))`;

/**
 * The transactions pg_stat_activity shows running in other databases of the server now. Their
 * 32-bit ids are widened with the epoch of the snapshot's xmax: a running transaction is within
 * 2^31 of it, either way.
 */
export async function foreignTransactions(db: Sql): Promise<ForeignTransactions> {
  const rows = await db.query(sql<{ xid: string }>`
    SELECT (r.ref - (r.ref % 4294967296 - a.backend_xid::text::bigint + 4294967296) % 4294967296)::text AS xid
      FROM pg_stat_activity AS a,
           (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 2147483648 AS ref) AS r
     WHERE a.backend_xid IS NOT NULL AND a.datname IS DISTINCT FROM current_database()`);
  return rows.map((r) => r.xid);
}

/**
 * Reads the events after `after`, gap-safely. Positions are taken before commit, so a later
 * position can commit before an earlier one; a reader that remembered only "last position"
 * would skip the earlier one forever. Reading in (tx_id, position) order and only below the
 * horizon (every older transaction that can append to this log has finished) means no event
 * that can still appear is ever behind the returned ones.
 */
export async function readEventsAfter(
  db: Sql,
  after: LogPosition,
  limit: number,
  foreign: ForeignTransactions = [],
): Promise<RecordedEvent[]> {
  // ORDER BY names the table's columns (e.): a bare tx_id would mean the text output column,
  // sorting '100' before '99' (skipping events) and defeating the index.
  const rows = await db.query(sql<EventRow>`
    SELECT e.position, e.tx_id::text AS tx_id, e.stream_id::text AS stream_id, e.stream_type, e.stream_version,
           e.type, e.data, e.metadata, e.occurred_at
      FROM "write"."events" AS e
     WHERE (e.tx_id, e.position) > (${after.txId.toString()}::text::xid8, ${after.position}::bigint)
       AND e.tx_id < (SELECT ${horizon(foreign)})
     ORDER BY e.tx_id, e.position
     LIMIT ${limit}::int`);
  return rows.map(toRecorded);
}

/**
 * True when committed events exist that readEventsAfter still holds back because an older
 * transaction is open: their tx_id is not below the horizon yet.
 */
export async function hasHeldBackEvents(db: Sql, foreign: ForeignTransactions = []): Promise<boolean> {
  // Asked as "is the newest tx_id at or above the horizon": max() reads one entry at the end of
  // the (tx_id, position) index whatever the statistics say, where EXISTS (… tx_id >= horizon)
  // may be planned as a scan of the whole log.
  const [row] = await db.query(sql<{ held: boolean }>`
    SELECT COALESCE((SELECT max(tx_id) FROM "write"."events") >= (SELECT ${horizon(foreign)}), false) AS held`);
  return row?.held === true;
}

export interface Backlog {
  /** Exact up to `exactUpTo` (backlogAfter's); past it, an estimate from positions, never below exactUpTo + 1. */
  events: number;
  /** When the oldest committed event after `after` occurred (events held back by an older open transaction count); null when none. */
  oldestAt: Date | null;
}

/** Backlogs up to this many events are counted exactly; longer ones are estimated. */
export const EXACT_BACKLOG = 10_000;

/**
 * How far a reader at `after` is behind the committed log. Each leader asks this every
 * PROJECTOR_POLL_MS, so its cost must not grow with the backlog: counting all of it, after an
 * outage or on a log grown large, read millions of index entries and rows every second, beside
 * the projector catching up (at 10⁷ events it held the catch-up to a fraction of its rate). So
 * only the first `exactUpTo` + 1 events in reading order are read, counted, and give the oldest
 * `occurred_at` (the oldest pending event is among the first to be read). Past that the count
 * is the newest position less the reader's: positions are taken in order, so that is the
 * backlog give or take the gaps of rolled-back transactions and commits out of position order.
 */
export async function backlogAfter(db: Sql, after: LogPosition, exactUpTo = EXACT_BACKLOG): Promise<Backlog> {
  const [row] = await db.query(sql<{ events: string; oldest: Date | null; newest: string | null }>`
    WITH next AS (
      SELECT e.occurred_at FROM "write"."events" AS e
       WHERE (e.tx_id, e.position) > (${after.txId.toString()}::text::xid8, ${after.position}::bigint)
       ORDER BY e.tx_id, e.position
       LIMIT ${exactUpTo + 1}::int)
    SELECT count(*)::bigint AS events, min(occurred_at) AS oldest,
           CASE WHEN count(*) > ${exactUpTo}::int THEN (SELECT max(position) FROM "write"."events") END AS newest
      FROM next`);
  const counted = Number(row?.events ?? 0);
  const events = row?.newest == null ? counted : Math.max(counted, Number(BigInt(row.newest) - after.position));
  return { events, oldestAt: row?.oldest ? new Date(row.oldest) : null };
}
