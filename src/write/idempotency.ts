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

/**
 * Claims the key first in the command's transaction: one row back when the claim is ours. A
 * concurrent duplicate waits on the primary key until the first transaction ends: if that one
 * committed, the claim is not ours (see replayOf), else it is. A rejected command rolls its
 * claim back with everything else, so its retry is decided afresh.
 */
export function claimKey(claim: KeyClaim): Statement<{ claimed: number }> {
  return sql`
    INSERT INTO "write"."command_keys" (actor_id, command, key, request_hash, created_at)
    VALUES (${claim.actorId}, ${claim.command}, ${claim.key}, ${requestHash(claim.request)}, ${claim.now})
    ON CONFLICT DO NOTHING RETURNING 1 AS claimed`;
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
