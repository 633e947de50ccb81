import { sql } from "../../db/sql";
import { STATUS_AFTER, type OrderStatus } from "../../events";
import { defineProjection } from "../projection";

interface StatusChange {
  id: string;
  status: OrderStatus;
  version: number;
  updated_at: string;
}

/**
 * read.orders: order summaries with their lines denormalized (sku, name, unit price as placed),
 * serving the order page, the customer's order list and the admin list. The row's version is
 * the stream version of the last event applied: replays and stale updates change nothing.
 */
export const ordersProjection = defineProjection({
  name: "orders",
  tables: { orders: sql.identifier("read", "orders") },
  handles: ["OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled"],

  project(events, tables) {
    const placed: Record<string, unknown>[] = [];
    const changes = new Map<string, StatusChange>();
    for (const e of events) {
      if (e.type === "OrderPlaced") {
        const { orderId, customerId, totalCents, itemCount, lines, placedAt } = e.data;
        placed.push({
          id: orderId,
          customer_id: customerId,
          total_cents: totalCents,
          item_count: itemCount,
          lines,
          placed_at: placedAt,
          updated_at: e.occurredAt.toISOString(),
          version: e.streamVersion,
        });
        continue;
      }
      const previous = changes.get(e.streamId);
      if (!previous || previous.version < e.streamVersion) {
        changes.set(e.streamId, {
          id: e.streamId,
          status: STATUS_AFTER[e.type],
          version: e.streamVersion,
          updated_at: e.occurredAt.toISOString(),
        });
      }
    }
    // The server runs them in order: an order placed and paid in one batch is inserted, then updated.
    const statements = [];
    if (placed.length > 0) {
      statements.push(sql`
        INSERT INTO ${tables.orders} (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version)
        SELECT id, customer_id, 'PLACED', total_cents, item_count, lines, placed_at, updated_at, version
          FROM jsonb_to_recordset(${JSON.stringify(placed)}::jsonb) AS x(id uuid, customer_id text, total_cents int,
               item_count int, lines jsonb, placed_at timestamptz, updated_at timestamptz, version int)
        ON CONFLICT (id) DO NOTHING`);
    }
    if (changes.size > 0) {
      statements.push(sql`
        UPDATE ${tables.orders} AS o
           SET status = c.status, version = c.version, updated_at = c.updated_at
          FROM jsonb_to_recordset(${JSON.stringify([...changes.values()])}::jsonb)
               AS c(id uuid, status text, version int, updated_at timestamptz)
         WHERE o.id = c.id AND o.version < c.version`);
    }
    const ids = [...new Set([...placed.map((p) => p.id as string), ...changes.keys()])];
    return { changes: ids.length > 0 ? [{ table: "orders", ids }] : [], statements };
  },
});
