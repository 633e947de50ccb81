import { assertNever, type RecordedEvent } from "../../shared/events";
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

  apply(sql, events, tables) {
    const placed: { id: string; position: string }[] = [];
    const changes = new Map<string, StatusChange>();
    const change = (e: RecordedEvent, status: OrderStatus) => {
      const previous = changes.get(e.streamId);
      if (!previous || previous.version < e.streamVersion) {
        changes.set(e.streamId, {
          id: e.streamId,
          status,
          version: e.streamVersion,
          updated_at: e.occurredAt.toISOString(),
        });
      }
    };
    for (const e of events) {
      if (!HANDLED.has(e.type)) continue;
      const event = { type: e.type, data: e.data } as OrderEvent;
      switch (event.type) {
        case "OrderPlaced":
          placed.push({ id: event.data.orderId, position: e.position.toString() });
          break;
        case "OrderPaid":
          change(e, "PAID");
          break;
        case "OrderShipped":
          change(e, "SHIPPED");
          break;
        case "OrderCancelled":
          change(e, "CANCELLED");
          break;
        default:
          assertNever(event);
      }
    }
    // Issued at once: the server runs them in order (an order placed and paid in one batch is
    // inserted, then updated).
    const written: Promise<unknown>[] = [];
    if (placed.length > 0) {
      // The new rows are taken from the placed events' own rows of the log (immutable), by
      // position: their data goes from jsonb to the row as it is, where sending it as JSON
      // would stringify every order's lines here and parse them again in the database.
      written.push(
        sql.query(
          `INSERT INTO ${tables.orders} (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version)
         SELECT (e.data->>'orderId')::uuid, e.data->>'customerId', 'PLACED', (e.data->>'totalCents')::int, (e.data->>'itemCount')::int,
                e.data->'lines', (e.data->>'placedAt')::timestamptz, e.occurred_at, e.stream_version
           FROM "write"."events" AS e
          WHERE e.position = ANY($1::bigint[]) AND e.type = 'OrderPlaced'
         ON CONFLICT (id) DO NOTHING`,
          [placed.map((p) => p.position)],
        ),
      );
    }
    if (changes.size > 0) {
      written.push(
        sql.query(
          `UPDATE ${tables.orders} AS o
            SET status = c.status, version = c.version, updated_at = c.updated_at
           FROM jsonb_to_recordset($1::jsonb) AS c(id uuid, status text, version int, updated_at timestamptz)
          WHERE o.id = c.id AND o.version < c.version`,
          [JSON.stringify([...changes.values()])],
        ),
      );
    }
    const ids = [...new Set([...placed.map((p) => p.id as string), ...changes.keys()])];
    return { changes: ids.length > 0 ? [{ table: "orders", ids }] : [], written: Promise.all(written) };
  },
};
