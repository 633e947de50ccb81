import type { Sql } from "../db/database";
import { sql, type Statement } from "../db/sql";
import { sqlState } from "../shared/errors";
import type { LogPosition } from "../shared/events";
import type { ReadChange } from "./projection";

// read.projection_checkpoints: written only by the projection engine (and the operator CLI that
// retries or rebuilds a projection); the query side reads it through query/projections.queries.ts.

export type ProjectionRunStatus = "RUNNING" | "FAILED" | "REBUILDING";

export interface Checkpoint extends LogPosition {
  name: string;
  status: ProjectionRunStatus;
}

export const READ_CHANGED = "read_changed";

interface CheckpointRow {
  name: string;
  tx_id: string;
  position: string;
  status: ProjectionRunStatus;
}

const toCheckpoint = (r: CheckpointRow): Checkpoint => ({
  name: r.name,
  txId: BigInt(r.tx_id),
  position: BigInt(r.position),
  status: r.status,
});

export async function ensureCheckpoints(db: Sql, names: string[]): Promise<void> {
  await db.query(sql`
    INSERT INTO "read"."projection_checkpoints" (name) SELECT unnest(${names}::text[]) ON CONFLICT (name) DO NOTHING`);
}

export async function listCheckpoints(db: Sql): Promise<Checkpoint[]> {
  const rows = await db.query(sql<CheckpointRow>`
    SELECT name, tx_id::text AS tx_id, position::text AS position, status FROM "read"."projection_checkpoints" ORDER BY name`);
  return rows.map(toCheckpoint);
}

/** Locks the checkpoint row for the rest of the transaction (a rebuild's swap). */
export async function lockCheckpoint(db: Sql, name: string): Promise<Checkpoint | undefined> {
  const [row] = await db.query(sql<CheckpointRow>`
    SELECT name, tx_id::text AS tx_id, position::text AS position, status
      FROM "read"."projection_checkpoints" WHERE name = ${name} FOR UPDATE`);
  return row && toCheckpoint(row);
}

/**
 * A batch's checkpoint: moves it from `from` (where the batch was read from) to `to` and
 * announces the changed rows, once the transaction commits. Sent ahead of the batch's rows:
 * it fails (see isCheckpointMoved) when the checkpoint is no longer at `from` or no longer
 * RUNNING, and the rows roll back with it.
 */
export function advanceCheckpoint(
  name: string,
  from: LogPosition,
  to: LogPosition,
  changes: ReadChange[],
): Statement<never> {
  return sql`SELECT "read"."advance_checkpoint"(${name}, ${from.txId.toString()}::text::xid8, ${from.position}::bigint,
      ${to.txId.toString()}::text::xid8, ${to.position}::bigint, ${readChangedMessages(name, to, changes)}::text[])`;
}

/** advanceCheckpoint found the checkpoint moved, or not RUNNING: read it again. */
export const isCheckpointMoved = (error: unknown): boolean => sqlState(error) === "55000";

/** Sets a checkpoint (a rebuild's own, or the live one at its swap, announced to the API instances). */
export function saveCheckpoint(
  name: string,
  at: LogPosition,
  status: ProjectionRunStatus,
  announce = false,
): Statement<never> {
  return sql`
    WITH saved AS (
      UPDATE "read"."projection_checkpoints"
         SET tx_id = ${at.txId.toString()}::text::xid8, position = ${at.position}::bigint, status = ${status},
             last_error = NULL, failed_position = NULL, updated_at = now()
       WHERE name = ${name} RETURNING 1)
    SELECT pg_notify(${READ_CHANGED}, m) FROM saved, unnest(${announce ? readChangedMessages(name, at, []) : []}::text[]) AS t(m)`;
}

/** Starts a checkpoint over at the beginning of the log (a rebuild's own checkpoint). */
export function resetCheckpoint(name: string, status: ProjectionRunStatus): Statement<never> {
  return sql`
    INSERT INTO "read"."projection_checkpoints" (name, tx_id, position, status) VALUES (${name}, '0', 0, ${status})
    ON CONFLICT (name) DO UPDATE
      SET tx_id = '0', position = 0, status = ${status}, last_error = NULL, failed_position = NULL, updated_at = now()`;
}

export function deleteCheckpoint(name: string): Statement<never> {
  return sql`DELETE FROM "read"."projection_checkpoints" WHERE name = ${name}`;
}

/** A read_changed message naming no row, from a checkpoint row `c` (SQL): where the projection stands, and whether it halted. */
const statusMessageSql = (halted: boolean) =>
  sql.trusted(`json_build_object('projection', c.name, 'table', NULL, 'ids', '[]'::json, 'txId', c.tx_id::text,
     'position', c.position::text${halted ? ", 'halted', true" : ""})::text`);

/** Halts a projection at a poison event, and tells the API instances (no mutation waits for it meanwhile). */
export async function markFailed(db: Sql, name: string, error: string, failedPosition: bigint | null): Promise<void> {
  await db.query(sql`
    WITH c AS (
      UPDATE "read"."projection_checkpoints"
         SET status = 'FAILED', last_error = ${error.slice(0, 2000)}, failed_position = ${failedPosition}::bigint, updated_at = now()
       WHERE name = ${name} RETURNING name, tx_id, position)
    SELECT pg_notify(${READ_CHANGED}, ${statusMessageSql(true)}) FROM c`);
}

/**
 * Operator action after fixing the cause of a failure: the projector picks the projection up
 * again, and the API instances, told in the same statement, wait for it again. The number of
 * checkpoints changed (0: it was not FAILED).
 */
export async function markRunning(db: Sql, name: string): Promise<number> {
  const changed = await db.query(sql`
    WITH c AS (
      UPDATE "read"."projection_checkpoints"
         SET status = 'RUNNING', last_error = NULL, failed_position = NULL, updated_at = now()
       WHERE name = ${name} AND status = 'FAILED' RETURNING name, tx_id, position)
    SELECT pg_notify(${READ_CHANGED}, ${statusMessageSql(false)}) FROM c`);
  return changed.length;
}

/** How far a projection was behind its source when the projector measured it. */
export interface LagMeasurement {
  name: string;
  events: number;
  oldestAt: Date | null;
}

/** Stores what an instance measured of its projections' lag, for the query side to show. */
export function saveLag(measuredBy: string, lags: LagMeasurement[]): Statement<never> {
  return sql`
    INSERT INTO "read"."projection_lag" (name, events, oldest_at, measured_at, measured_by)
    SELECT l.name, l.events, l.oldest_at, now(), ${measuredBy}
      FROM unnest(${lags.map((l) => l.name)}::text[], ${lags.map((l) => l.events)}::bigint[],
                  ${lags.map((l) => l.oldestAt?.toISOString() ?? null)}::timestamptz[]) AS l(name, events, oldest_at)
    ON CONFLICT (name) DO UPDATE
      SET events = excluded.events, oldest_at = excluded.oldest_at, measured_at = excluded.measured_at,
          measured_by = excluded.measured_by`;
}

/** The payload of NOTIFY read_changed (kept under Postgres' 8000-byte limit by chunking ids). */
export interface ReadChangedMessage {
  projection: string;
  table: string | null;
  ids: string[];
  /** As ReadChange.updated: the only columns the batch set on these rows, all of which existed before it. */
  updated?: readonly string[];
  txId: string;
  position: string;
  /** The projection halted at a poison event (markFailed); any later message of it: it runs again. */
  halted?: true;
}

/** Ids per read_changed message: a batch that changed more sends several, each with the batch's checkpoint. */
export const IDS_PER_NOTIFY = 100;

function readChangedMessages(projection: string, at: LogPosition, changes: ReadChange[]): string[] {
  const messages: ReadChangedMessage[] = [];
  const base = { projection, txId: at.txId.toString(), position: at.position.toString() };
  for (const change of changes) {
    for (let i = 0; i < change.ids.length; i += IDS_PER_NOTIFY) {
      const ids = change.ids.slice(i, i + IDS_PER_NOTIFY);
      messages.push({ ...base, table: change.table, ids, ...(change.updated && { updated: change.updated }) });
    }
  }
  // Every message carries the new checkpoint (what waiting mutations compare against); a batch
  // that changed no row still announces it.
  if (messages.length === 0) messages.push({ ...base, table: null, ids: [] });
  return messages.map((m) => JSON.stringify(m));
}
