import { assertNever } from "../../shared/events";
import type { OrderEvent, OrderStatus } from "../../write/orders/orders.events";
import type { Projection } from "../projection";

const HANDLED = new Set<string>(["OrderPlaced", "OrderCancelled", "OrderPaid", "OrderShipped"]);

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
export const ordersProjection: Projection<"orders"> = {
  name: "orders",
  tables: { orders: `"read"."orders"` },

  async apply(sql, events, tables) {
    const placed: Record<string, unknown>[] = [];
    const changes = new Map<string, StatusChange>();
    for (const e of events) {
      if (!HANDLED.has(e.type)) continue;
      const event = { type: e.type, data: e.data } as OrderEvent;
      const change = (status: OrderStatus) => {
        const previous = changes.get(e.streamId);
        if (!previous || previous.version < e.streamVersion) {
          changes.set(e.streamId, { id: e.streamId, status, version: e.streamVersion, updated_at: e.occurredAt.toISOString() });
        }
      };
      switch (event.type) {
        case "OrderPlaced": {
          const d = event.data;
          placed.push({
            id: d.orderId, customer_id: d.customerId, status: "PLACED", total_cents: d.totalCents, item_count: d.itemCount,
            lines: d.lines, placed_at: d.placedAt, updated_at: e.occurredAt.toISOString(), version: e.streamVersion,
          });
          break;
        }
        case "OrderPaid":
          change("PAID");
          break;
        case "OrderShipped":
          change("SHIPPED");
          break;
        case "OrderCancelled":
          change("CANCELLED");
          break;
        default:
          assertNever(event);
      }
    }
    if (placed.length > 0) {
      await sql.query(
        `INSERT INTO ${tables.orders} (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version)
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, customer_id text, status text, total_cents int, item_count int,
                lines jsonb, placed_at timestamptz, updated_at timestamptz, version int)
         ON CONFLICT (id) DO NOTHING`,
        [JSON.stringify(placed)],
      );
    }
    if (changes.size > 0) {
      await sql.query(
        `UPDATE ${tables.orders} AS o
            SET status = c.status, version = c.version, updated_at = c.updated_at
           FROM jsonb_to_recordset($1::jsonb) AS c(id uuid, status text, version int, updated_at timestamptz)
          WHERE o.id = c.id AND o.version < c.version`,
        [JSON.stringify([...changes.values()])],
      );
    }
    const ids = [...new Set([...placed.map((p) => p.id as string), ...changes.keys()])];
    return ids.length > 0 ? [{ table: "orders", ids }] : [];
  },
};

