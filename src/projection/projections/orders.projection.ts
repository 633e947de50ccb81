import { sql } from "../../db/sql";
import {
  cancellationReasonOf,
  STATUS_AFTER,
  type CancellationReason,
  type OrderPlaced,
  type OrderStatus,
} from "../../events";
import type { RecordedEvent } from "../../shared/events";
import { defineProjection } from "../projection";

interface StatusChange {
  id: string;
  status: OrderStatus;
  version: number;
  updated_at: string;
  cancellation_reason: CancellationReason | null;
  applied_tx: string;
  applied_pos: string;
}

/**
 * read.orders: order summaries with their lines denormalized (sku, name, unit price as placed),
 * serving the order page, the customer's order list and the admin list. The row's version is
 * the stream version of the last event applied: replays and stale updates change nothing. Its
 * (applied_tx, applied_pos) is that event's place in the log: the row's `position` cursor.
 */
export const ordersProjection = defineProjection({
  name: "orders",
  tables: { orders: sql.identifier("read", "orders") },
  handles: ["OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled"],

  project(events, tables) {
    const placed: RecordedEvent<OrderPlaced>[] = [];
    const changes = new Map<string, StatusChange>();
    for (const e of events) {
      if (e.type === "OrderPlaced") {
        placed.push(e);
        continue;
      }
      const previous = changes.get(e.streamId);
      if (!previous || previous.version < e.streamVersion) {
        changes.set(e.streamId, {
          id: e.streamId,
          status: STATUS_AFTER[e.type],
          version: e.streamVersion,
          updated_at: e.occurredAt.toISOString(),
          cancellation_reason: e.type === "OrderCancelled" ? cancellationReasonOf(e.data, e.metadata.actor.role) : null,
          applied_tx: e.txId.toString(),
          applied_pos: e.position.toString(),
        });
      }
    }
    // The server runs them in order: an order placed and paid in one batch is inserted, then updated.
    const statements = [];
    if (placed.length > 0) {
      // Columns as arrays, the lines as one JSON array beside them: the lines are the only part
      // the database must parse, and parsing is most of what this insert costs.
      const data = placed.map((e) => e.data);
      statements.push(sql`
        INSERT INTO ${tables.orders} (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version,
                                      expires_at, applied_tx, applied_pos)
        SELECT o.id, o.customer_id, 'PLACED', o.total_cents, o.item_count, l.lines, o.placed_at, o.updated_at, o.version,
               o.expires_at, o.applied_tx::xid8, o.applied_pos
          FROM unnest(${data.map((d) => d.orderId)}::uuid[], ${data.map((d) => d.customerId)}::text[],
                      ${data.map((d) => d.totalCents)}::int[], ${data.map((d) => d.itemCount)}::int[],
                      ${data.map((d) => d.placedAt)}::timestamptz[], ${placed.map((e) => e.occurredAt.toISOString())}::timestamptz[],
                      ${placed.map((e) => e.streamVersion)}::int[], ${data.map((d) => d.expiresAt ?? null)}::timestamptz[],
                      ${placed.map((e) => e.txId.toString())}::text[], ${placed.map((e) => e.position.toString())}::bigint[])
               WITH ORDINALITY AS o(id, customer_id, total_cents, item_count, placed_at, updated_at, version, expires_at,
                                    applied_tx, applied_pos, n)
          JOIN jsonb_array_elements(${JSON.stringify(data.map((d) => d.lines))}::jsonb) WITH ORDINALITY AS l(lines, n)
            ON l.n = o.n
        ON CONFLICT (id) DO NOTHING`);
    }
    if (changes.size > 0) {
      statements.push(sql`
        UPDATE ${tables.orders} AS o
           SET status = c.status, version = c.version, updated_at = c.updated_at, expires_at = NULL,
               cancellation_reason = c.cancellation_reason, applied_tx = c.applied_tx::xid8, applied_pos = c.applied_pos
          FROM jsonb_to_recordset(${JSON.stringify([...changes.values()])}::jsonb)
               AS c(id uuid, status text, version int, updated_at timestamptz, cancellation_reason text, applied_tx text,
                    applied_pos bigint)
         WHERE o.id = c.id AND o.version < c.version`);
    }
    const ids = [...new Set([...placed.map((e) => e.streamId), ...changes.keys()])];
    return { changes: ids.length > 0 ? [{ table: "orders", ids }] : [], statements };
  },
});
