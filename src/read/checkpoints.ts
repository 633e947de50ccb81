import type { Sql } from "../db/database";
import { eventsAfterSql, toRecorded, type EventRow } from "../eventLog/eventLog";
import type { LogPosition, RecordedEvent } from "../shared/events";
import type { ReadChange } from "./projection";

// read.projection_checkpoints is written only by the projector (and the operator CLI that
// retries or rebuilds a projection); queries read it through read/queries/projections.queries.ts.

export type ProjectionRunStatus = "RUNNING" | "FAILED" | "REBUILDING";

export interface Checkpoint extends LogPosition {
  name: string;
  status: ProjectionRunStatus;
}

export async function ensureCheckpoints(sql: Sql, names: string[]): Promise<void> {
  await sql.query(
    `INSERT INTO "read"."projection_checkpoints" (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`,
    [names],
  );
}

/** Locks the checkpoint row for the rest of the transaction: two projectors can never apply the same batch. */
export async function lockCheckpoint(sql: Sql, name: string): Promise<Checkpoint | undefined> {
  const [row] = await sql.query<{ name: string; tx_id: string; position: string; status: ProjectionRunStatus }>(
    `SELECT name, tx_id::text AS tx_id, position, status FROM "read"."projection_checkpoints" WHERE name = $1 FOR UPDATE`,
    [name],
  );
  return row && { name: row.name, txId: BigInt(row.tx_id), position: BigInt(row.position), status: row.status };
}

/**
 * lockCheckpoint, then the events after it (up to `limit`) if it is RUNNING: one round trip.
 * The lock is taken before the events are read, so a checkpoint moved by someone else while we
 * waited for the lock is the one we read after.
 */
export async function lockCheckpointAndReadEvents(
  sql: Sql,
  name: string,
  limit: number,
): Promise<{ checkpoint: Checkpoint | undefined; events: RecordedEvent[] }> {
  const rows = await sql.query<
    { checkpoint_tx: string; checkpoint_position: string; status: ProjectionRunStatus } & Partial<EventRow>
  >(
    `WITH checkpoint AS (SELECT tx_id, position, status FROM "read"."projection_checkpoints" WHERE name = $1 FOR UPDATE)
     SELECT c.tx_id::text AS checkpoint_tx, c.position AS checkpoint_position, c.status, e.*
       FROM checkpoint c
       LEFT JOIN LATERAL (${eventsAfterSql("c.tx_id", "c.position", "$2::int")}) e ON c.status = 'RUNNING'
      ORDER BY e.tx_id::xid8, e.position`,
    [name, limit],
  );
  const [first] = rows;
  if (!first) return { checkpoint: undefined, events: [] };
  const checkpoint = {
    name,
    txId: BigInt(first.checkpoint_tx),
    position: BigInt(first.checkpoint_position),
    status: first.status,
  };
  return { checkpoint, events: first.position == null ? [] : rows.map((r) => toRecorded(r as EventRow)) };
}

/**
 * Moves a checkpoint. With `changes`, also NOTIFYs read_changed in the same statement (one round
 * trip less per batch); every API instance hears it once the transaction commits.
 */
export async function saveCheckpoint(
  sql: Sql,
  name: string,
  at: LogPosition,
  status: ProjectionRunStatus = "RUNNING",
  changes?: ReadChange[],
): Promise<void> {
  const params = [name, at.txId.toString(), at.position, status];
  const update = `UPDATE "read"."projection_checkpoints"
        SET tx_id = $2::text::xid8, position = $3::bigint, status = $4, last_error = NULL, failed_position = NULL, updated_at = now()
      WHERE name = $1`;
  if (!changes) {
    await sql.query(update, params);
    return;
  }
  await sql.query(
    `WITH saved AS (${update} RETURNING 1)
     SELECT pg_notify('${READ_CHANGED}', m) FROM saved, unnest($5::text[]) AS t(m)`,
    [...params, readChangedMessages(name, at, changes)],
  );
}

/** Starts a checkpoint over at the beginning of the log (a rebuild's own checkpoint). */
export async function resetCheckpoint(sql: Sql, name: string, status: ProjectionRunStatus): Promise<void> {
  await sql.query(
    `INSERT INTO "read"."projection_checkpoints" (name, tx_id, position, status) VALUES ($1, '0', 0, $2)
     ON CONFLICT (name) DO UPDATE SET tx_id = '0', position = 0, status = $2, last_error = NULL, failed_position = NULL, updated_at = now()`,
    [name, status],
  );
}

export async function deleteCheckpoint(sql: Sql, name: string): Promise<void> {
  await sql.query(`DELETE FROM "read"."projection_checkpoints" WHERE name = $1`, [name]);
}

export async function markFailed(sql: Sql, name: string, error: string, failedPosition: bigint | null): Promise<void> {
  await sql.query(
    `UPDATE "read"."projection_checkpoints" SET status = 'FAILED', last_error = $2, failed_position = $3::bigint, updated_at = now() WHERE name = $1`,
    [name, error.slice(0, 2000), failedPosition],
  );
}

/** Operator action after fixing the cause of a failure: the projector picks the projection up again. */
export async function markRunning(sql: Sql, name: string): Promise<number> {
  const changed = await sql.query(
    `UPDATE "read"."projection_checkpoints" SET status = 'RUNNING', last_error = NULL, failed_position = NULL, updated_at = now()
      WHERE name = $1 AND status = 'FAILED' RETURNING 1`,
    [name],
  );
  return changed.length;
}

export async function listCheckpoints(sql: Sql): Promise<Checkpoint[]> {
  const rows = await sql.query<{ name: string; tx_id: string; position: string; status: ProjectionRunStatus }>(
    `SELECT name, tx_id::text AS tx_id, position, status FROM "read"."projection_checkpoints" ORDER BY name`,
  );
  return rows.map((r) => ({ name: r.name, txId: BigInt(r.tx_id), position: BigInt(r.position), status: r.status }));
}

export const READ_CHANGED = "read_changed";

/** The payload of NOTIFY read_changed (kept under Postgres' 8000-byte limit by chunking ids). */
export interface ReadChangedMessage {
  projection: string;
  table: string | null;
  ids: string[];
  txId: string;
  position: string;
}

const IDS_PER_NOTIFY = 100;

function readChangedMessages(projection: string, at: LogPosition, changes: ReadChange[]): string[] {
  const messages: ReadChangedMessage[] = [];
  const base = { projection, txId: at.txId.toString(), position: at.position.toString() };
  for (const change of changes) {
    for (let i = 0; i < change.ids.length; i += IDS_PER_NOTIFY) {
      messages.push({ ...base, table: change.table, ids: change.ids.slice(i, i + IDS_PER_NOTIFY) });
    }
  }
  // Every message carries the new checkpoint (what waiting mutations compare against); a batch
  // that changed no row still announces it.
  if (messages.length === 0) messages.push({ ...base, table: null, ids: [] });
  return messages.map((m) => JSON.stringify(m));
}
