import type { Sql } from "../../db/database";
import { assertNever, comparePositions, type LogPosition, type RecordedEvent } from "../../shared/events";
import type { CatalogEvent } from "../../write/catalog/catalog.events";
import type { OrderEvent } from "../../write/orders/orders.events";
import type { Projection, TableMap } from "../projection";

type Handled = CatalogEvent | OrderEvent;
const HANDLED = new Set<string>([
  "ProductCreated",
  "StockAdjusted",
  "OrderPlaced",
  "OrderCancelled",
  "OrderPaid",
  "OrderShipped",
]);

interface Delta {
  id: string;
  available: number;
  unitsSold: number;
  /** First and last event of this batch that touch the row. */
  first: LogPosition;
  last: LogPosition;
  updatedAt: Date;
}

/**
 * read.products: the catalog as the storefront shows it. A batch is folded into one insert
 * for new products and one update of per-product deltas (stock moves are commutative).
 * A row remembers the last event applied to it; a delta is applied only to rows that have not
 * seen the batch's first event for them.
 */
export const catalogProjection: Projection<"products"> = {
  name: "catalog",
  tables: { products: `"read"."products"` },

  apply(sql, events, tables) {
    const created: Record<string, unknown>[] = [];
    const deltas = new Map<string, Delta>();
    const touch = (id: string, e: RecordedEvent, available: number, unitsSold: number) => {
      const pos = { txId: e.txId, position: e.position };
      const d = deltas.get(id) ?? { id, available: 0, unitsSold: 0, first: pos, last: pos, updatedAt: e.occurredAt };
      d.available += available;
      d.unitsSold += unitsSold;
      if (comparePositions(pos, d.last) > 0) d.last = pos;
      d.updatedAt = e.occurredAt;
      deltas.set(id, d);
    };

    for (const e of events) {
      if (!HANDLED.has(e.type)) continue;
      const event = { type: e.type, data: e.data } as Handled;
      switch (event.type) {
        case "ProductCreated": {
          const d = event.data;
          created.push({
            id: d.productId,
            sku: d.sku,
            name: d.name,
            description: d.description,
            price_cents: d.priceCents,
            available: d.initialStock,
            in_stock: d.initialStock > 0,
            units_sold: 0,
            created_at: e.occurredAt.toISOString(),
            updated_at: e.occurredAt.toISOString(),
            applied_tx: e.txId.toString(),
            applied_pos: e.position.toString(),
          });
          break;
        }
        case "StockAdjusted":
          touch(event.data.productId, e, event.data.delta, 0);
          break;
        case "OrderPlaced":
          for (const l of event.data.lines) touch(l.productId, e, -l.quantity, l.quantity);
          break;
        case "OrderCancelled":
          for (const l of event.data.lines) touch(l.productId, e, l.quantity, -l.quantity);
          break;
        case "OrderPaid":
        case "OrderShipped":
          break; // shipping consumes reserved stock: what is available does not change
        default:
          assertNever(event);
      }
    }

    // Both issued at once: the server runs them in order (a product created and restocked in one
    // batch is inserted, then moved).
    const written = Promise.all([
      created.length > 0 ? insertProducts(sql, tables, created) : undefined,
      deltas.size > 0 ? applyDeltas(sql, tables, [...deltas.values()]) : undefined,
    ]);
    const ids = [...new Set([...created.map((c) => c.id as string), ...deltas.keys()])];
    return { changes: ids.length > 0 ? [{ table: "products", ids }] : [], written };
  },
};

async function insertProducts(sql: Sql, tables: TableMap<"products">, rows: Record<string, unknown>[]): Promise<void> {
  await sql.query(
    `INSERT INTO ${tables.products} (id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at, applied_tx, applied_pos)
     SELECT id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at, applied_tx::text::xid8, applied_pos
       FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, sku text, name text, description text, price_cents int, available int,
            in_stock boolean, units_sold int, created_at timestamptz, updated_at timestamptz, applied_tx text, applied_pos bigint)
     ON CONFLICT (id) DO NOTHING`,
    [JSON.stringify(rows)],
  );
}

async function applyDeltas(sql: Sql, tables: TableMap<"products">, deltas: Delta[]): Promise<void> {
  const rows = deltas.map((d) => ({
    id: d.id,
    available: d.available,
    units_sold: d.unitsSold,
    updated_at: d.updatedAt.toISOString(),
    first_tx: d.first.txId.toString(),
    first_pos: d.first.position.toString(),
    last_tx: d.last.txId.toString(),
    last_pos: d.last.position.toString(),
  }));
  await sql.query(
    `UPDATE ${tables.products} AS p
        SET available = p.available + d.available,
            in_stock = p.available + d.available > 0,
            units_sold = p.units_sold + d.units_sold,
            updated_at = GREATEST(p.updated_at, d.updated_at),
            applied_tx = d.last_tx::text::xid8,
            applied_pos = d.last_pos
       FROM jsonb_to_recordset($1::jsonb) AS d(id uuid, available int, units_sold int, updated_at timestamptz,
            first_tx text, first_pos bigint, last_tx text, last_pos bigint)
      WHERE p.id = d.id
        AND (p.applied_tx, p.applied_pos) < (d.first_tx::text::xid8, d.first_pos)`,
    [JSON.stringify(rows)],
  );
}
