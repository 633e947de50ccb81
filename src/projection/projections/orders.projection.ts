import { sql } from "../../db/sql";
import {
  cancellationReasonOf,
  STATUS_AFTER,
  type CancellationReason,
  type OrderPlaced,
  type OrderStatus,
} from "../../events";
import type { RecordedEvent } from "../../shared/events";
import { batchRows } from "../../db/batchRows";
import { defineProjection, rowKey } from "../projection";
import { ORDERS_PROJECTION, ORDERS_TABLE } from "../names";

interface StatusChange {
  id: string;
  status: OrderStatus;
  version: number;
  updated_at: string;
  cancellation_reason: CancellationReason | null;
  applied_tx: string;
  applied_pos: string;
}

/** What an event of an order leaves in its row: its status, its version, its time and its place in the log. */
const appliedBy = (
  e: RecordedEvent,
  status: OrderStatus,
  cancellation_reason: CancellationReason | null = null,
): StatusChange => ({
  id: e.streamId,
  status,
  version: e.streamVersion,
  updated_at: e.occurredAt.toISOString(),
  cancellation_reason,
  applied_tx: e.txId.toString(),
  applied_pos: e.position.toString(),
});

/**
 * read.orders: order summaries with their lines denormalized (sku, name, unit price as placed),
 * serving the order page, the customer's order list and the admin list. The row's version is
 * the stream version of the last event applied: replays and stale updates change nothing. Its
 * (applied_tx, applied_pos) is that event's place in the log: the row's `position` cursor.
 */
export const ordersProjection = defineProjection({
  name: ORDERS_PROJECTION,
  tables: { orders: sql.identifier("read", "orders") },
  handles: ["OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled"],

  project(events, tables) {
    // By order: one event delivered twice in a batch is one row to insert.
    const placed = new Map<string, RecordedEvent<OrderPlaced>>();
    const changes = new Map<string, StatusChange>();
    for (const e of events) {
      if (e.type === "OrderPlaced") {
        if (!placed.has(e.streamId)) placed.set(e.streamId, e);
        continue;
      }
      const previous = changes.get(e.streamId);
      if (!previous || previous.version < e.streamVersion) {
        const reason = e.type === "OrderCancelled" ? cancellationReasonOf(e.data, e.metadata.actor.role) : null;
        changes.set(e.streamId, appliedBy(e, STATUS_AFTER[e.type], reason));
      }
    }
    // An order placed in this batch is inserted as the batch leaves it: one row version. Inserted
    // and then updated, it would leave a dead version behind in a page that is full by then (a
    // status change is never a HOT update: status is indexed), and once VACUUM records that room
    // later inserts go back to fill it, a page read each once the table outgrows memory. A catch-up
    // or a rebuild places and changes most orders in one batch.
    const statements = [];
    if (placed.size > 0) {
      const rows = [...placed.values()].map((e) => {
        const change = changes.get(e.streamId);
        const folded = change !== undefined && change.version > e.streamVersion;
        if (folded) changes.delete(e.streamId);
        const last = folded ? change : appliedBy(e, STATUS_AFTER.OrderPlaced);
        // The event's data as it is, not copied into a new object with the rest: a copy of an
        // object parsed from JSON costs more than everything else this function does for it.
        return { order: e.data, last, expiresAt: folded ? null : (e.data.expiresAt ?? null) };
      });
      // Columns as arrays, the lines as one JSON array beside them: the lines are the only part
      // the database must parse, and parsing is most of what this insert costs.
      statements.push(sql`
        INSERT INTO ${tables.orders} AS r (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at,
                                           version, expires_at, cancellation_reason, applied_tx, applied_pos, row_key)
        SELECT o.id, o.customer_id, o.status, o.total_cents, o.item_count, l.lines, o.placed_at, o.updated_at, o.version,
               o.expires_at, o.cancellation_reason, o.applied_tx::xid8, o.applied_pos, ${rowKey("o.id")}
          FROM unnest(${rows.map((r) => r.order.orderId)}::uuid[], ${rows.map((r) => r.order.customerId)}::text[],
                      ${rows.map((r) => r.last.status)}::text[], ${rows.map((r) => r.order.totalCents)}::int[],
                      ${rows.map((r) => r.order.itemCount)}::int[], ${rows.map((r) => r.order.placedAt)}::timestamptz[],
                      ${rows.map((r) => r.last.updated_at)}::timestamptz[], ${rows.map((r) => r.last.version)}::int[],
                      ${rows.map((r) => r.expiresAt)}::timestamptz[], ${rows.map((r) => r.last.cancellation_reason)}::text[],
                      ${rows.map((r) => r.last.applied_tx)}::text[], ${rows.map((r) => r.last.applied_pos)}::bigint[])
               WITH ORDINALITY AS o(id, customer_id, status, total_cents, item_count, placed_at, updated_at, version,
                                    expires_at, cancellation_reason, applied_tx, applied_pos, n)
          JOIN jsonb_array_elements(${JSON.stringify(rows.map((r) => r.order.lines))}::jsonb) WITH ORDINALITY AS l(lines, n)
            ON l.n = o.n
        ON CONFLICT (id) DO UPDATE
           SET status = excluded.status, version = excluded.version, updated_at = excluded.updated_at,
               expires_at = excluded.expires_at, cancellation_reason = excluded.cancellation_reason,
               applied_tx = excluded.applied_tx, applied_pos = excluded.applied_pos
         WHERE r.version < excluded.version`);
    }
    if (changes.size > 0) {
      const rows = [...changes.values()];
      const changed = batchRows("read", "c", {
        id: [rows.map((r) => r.id), "uuid"],
        status: [rows.map((r) => r.status), "text"],
        version: [rows.map((r) => r.version), "int"],
        updated_at: [rows.map((r) => r.updated_at), "timestamptz"],
        cancellation_reason: [rows.map((r) => r.cancellation_reason), "text"],
        applied_tx: [rows.map((r) => r.applied_tx), "text"],
        applied_pos: [rows.map((r) => r.applied_pos), "bigint"],
      });
      statements.push(sql`
        UPDATE ${tables.orders} AS o
           SET status = c.status, version = c.version, updated_at = c.updated_at, expires_at = NULL,
               cancellation_reason = c.cancellation_reason, applied_tx = c.applied_tx::xid8, applied_pos = c.applied_pos
          FROM ${changed}
         WHERE o.id = c.id AND o.version < c.version`);
    }
    const ids = [...new Set([...placed.keys(), ...changes.keys()])];
    return { changes: ids.length > 0 ? [{ table: ORDERS_TABLE, ids }] : [], statements };
  },
});
