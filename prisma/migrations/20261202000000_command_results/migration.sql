-- A replayed command answers from what its first request stored with the key: its result and
-- the log position of its last event (written in the same transaction as the events).
ALTER TABLE "write"."command_keys" ADD COLUMN "result" JSONB, ADD COLUMN "position" BIGINT;

UPDATE "write"."command_keys" k
   SET "position" = e.position,
       "result" = jsonb_build_object(
         CASE WHEN k.command IN ('createProduct', 'restockProduct') THEN 'productId' ELSE 'orderId' END,
         e.stream_id::text)
  FROM (SELECT DISTINCT ON (tx_id) tx_id, position, stream_id
          FROM "write"."events" ORDER BY tx_id, position DESC) e
 WHERE e.tx_id = k.tx_id;
