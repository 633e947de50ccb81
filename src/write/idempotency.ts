import { createHash } from "node:crypto";
import type { Sql } from "../db/database";
import { lastEventOfTransaction } from "../eventLog/eventLog";
import { badInput, conflict } from "../shared/errors";
import type { LogPosition } from "../shared/events";

export const MAX_KEY_LENGTH = 200;

export interface KeyClaim {
  actorId: string;
  command: string;
  key: string;
  /** What the request asked for: the same key with a different request is a CONFLICT. */
  request: unknown;
  now: Date;
}

export function checkKey(key: string): void {
  if (!key.trim() || key.length > MAX_KEY_LENGTH)
    throw badInput(`idempotencyKey must be 1 to ${MAX_KEY_LENGTH} characters`, { field: "idempotencyKey" });
}

function requestHash(request: unknown): string {
  return createHash("sha256").update(JSON.stringify(request)).digest("hex");
}

/**
 * Use for idempotency: claims (actor, command, key) first in the command's transaction, and
 * answers whether the claim is ours. The statement is issued at once, so the command's next
 * statement can leave in the same round trip (the server still runs the claim first). A
 * concurrent duplicate waits on the primary key until the first transaction ends: if that one
 * committed, the claim is not ours (see replayOf), else it is. A rejected command rolls its claim
 * back with everything else, so its retry is decided afresh.
 */
export function claimKey(sql: Sql, claim: KeyClaim): Promise<boolean> {
  return sql
    .query(
      `INSERT INTO "write"."command_keys" (actor_id, command, key, request_hash, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT DO NOTHING RETURNING 1`,
      [claim.actorId, claim.command, claim.key, requestHash(claim.request), claim.now],
    )
    .then((claimed) => claimed.length === 1);
}

/**
 * For a key claimed by an earlier, committed request: where its events went (the replay's
 * answer), or CONFLICT if that request asked for something else.
 */
export async function replayOf(sql: Sql, claim: KeyClaim): Promise<{ streamId: string; position: LogPosition }> {
  const [first] = await sql.query<{ request_hash: string; tx_id: string }>(
    `SELECT request_hash, tx_id::text AS tx_id FROM "write"."command_keys" WHERE actor_id = $1 AND command = $2 AND key = $3`,
    [claim.actorId, claim.command, claim.key],
  );
  if (!first) throw new Error(`idempotency key ${claim.key} neither claimed nor found`);
  if (first.request_hash !== requestHash(claim.request))
    throw conflict("this idempotencyKey was already used for a different request", { field: "idempotencyKey" });
  const replay = await lastEventOfTransaction(sql, BigInt(first.tx_id));
  if (!replay) throw new Error(`idempotency key ${claim.key} without the events of its transaction`);
  return replay;
}
