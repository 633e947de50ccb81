import { createHash } from "node:crypto";
import type { Sql } from "../db/database";
import { sql, type Statement } from "../db/sql";
import { badInput, conflict } from "../shared/errors";
import type { LogPosition } from "../shared/events";

export const MAX_KEY_LENGTH = 200;

/** Use for idempotency: (actor, command, client key), and what the request asked for. */
export interface KeyClaim {
  actorId: string;
  command: string;
  key: string;
  /** What the request asked for: the same key with a different request is a CONFLICT. */
  request: unknown;
  now: Date;
}

export function checkKey(key: string): void {
  if (!key.trim() || key.length > MAX_KEY_LENGTH) {
    throw badInput(`idempotencyKey must be 1 to ${MAX_KEY_LENGTH} characters`, { field: "idempotencyKey" });
  }
}

function requestHash(request: unknown): string {
  return createHash("sha256").update(JSON.stringify(request)).digest("hex");
}

/** Advisory locks of (KEY_LOCKS, hash of a key): apart from every single-number lock (leader, migrations). */
const KEY_LOCKS = 72_707;

/**
 * Use for idempotency, first in the command's transaction: waits until no other transaction
 * holds this key (a concurrent duplicate waits for the first request to end), then finds
 * whether a committed request used it (a row back: the key is taken, see replayOf). Two
 * statements, sent together with the command's load. The key's row itself is written with the
 * events (see appendEvents), so a rejected command leaves none and its retry is decided afresh.
 */
export function claimKey(claim: KeyClaim): [Statement<never>, Statement<{ taken: number }>] {
  return [
    sql`SELECT pg_advisory_xact_lock(${KEY_LOCKS}::int, hashtext(${claim.actorId} || '/' || ${claim.command} || '/' || ${claim.key}))`,
    sql`SELECT 1 AS taken FROM "write"."command_keys"
         WHERE actor_id = ${claim.actorId} AND command = ${claim.command} AND key = ${claim.key}`,
  ];
}

/** The key's row: what the request asked for and what the command answered. */
export function keyRecord(claim: KeyClaim, result: unknown): KeyRecord {
  return { ...claim, requestHash: requestHash(claim.request), result };
}

export interface KeyRecord extends KeyClaim {
  requestHash: string;
  result: unknown;
}

/**
 * For a key claimed by an earlier, committed request: its stored result and the position of its
 * last event (the replay's answer), or CONFLICT if that request asked for something else.
 */
export async function replayOf(db: Sql, claim: KeyClaim): Promise<{ result: unknown; position: LogPosition }> {
  const [first] = await db.query(sql<{ request_hash: string; result: unknown; tx_id: string; position: string }>`
    SELECT request_hash, result, tx_id::text AS tx_id, position::text AS position
      FROM "write"."command_keys" WHERE actor_id = ${claim.actorId} AND command = ${claim.command} AND key = ${claim.key}`);
  if (!first) throw new Error(`idempotency key ${claim.key} neither claimed nor found`);
  if (first.request_hash !== requestHash(claim.request)) {
    throw conflict("this idempotencyKey was already used for a different request", { field: "idempotencyKey" });
  }
  return { result: first.result, position: { txId: BigInt(first.tx_id), position: BigInt(first.position) } };
}
