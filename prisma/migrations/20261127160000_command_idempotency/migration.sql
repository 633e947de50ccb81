-- Idempotency moves from placeOrder into the command bus, for every command: a key is claimed
-- per (actor, command, key) in the command's own transaction, and remembers that transaction
-- (tx_id), so a replay answers from the events it appended.

CREATE TABLE "write"."command_keys" (
  "actor_id"     TEXT NOT NULL,
  "command"      TEXT NOT NULL,
  "key"          TEXT NOT NULL,
  "request_hash" TEXT NOT NULL,
  "tx_id"        XID8 NOT NULL DEFAULT pg_current_xact_id(),
  "created_at"   TIMESTAMPTZ(3) NOT NULL,
  PRIMARY KEY ("actor_id", "command", "key")
);

INSERT INTO "write"."command_keys" (actor_id, command, key, request_hash, tx_id, created_at)
SELECT k.customer_id, 'placeOrder', k.key, k.request_hash, e.tx_id, k.created_at
  FROM "write"."idempotency_keys" k
  JOIN "write"."events" e ON e.stream_id = k.order_id AND e.stream_version = 1;

DROP TABLE "write"."idempotency_keys";
