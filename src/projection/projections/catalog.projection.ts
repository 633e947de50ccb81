import { sql } from "../../db/sql";
import { stockMoves } from "../../events/stock";
import { assertNever, comparePositions, positionOf, type LogPosition } from "../../shared/events";
import { defineProjection } from "../projection";

interface Delta {
  id: string;
  available: number;
  sold: number;
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
export const catalogProjection = defineProjection({
  name: "catalog",
  tables: { products: sql.identifier("read", "products") },
  handles: ["ProductCreated", "StockAdjusted", "OrderPlaced", "OrderCancelled"],

  project(events, tables) {
    const created: Record<string, unknown>[] = [];
    const deltas = new Map<string, Delta>();

    for (const e of events) {
      switch (e.type) {
        case "ProductCreated": {
          const d = e.data;
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
        case "OrderPlaced":
        case "OrderCancelled":
          for (const move of stockMoves(e)) {
            const at = positionOf(e);
            const d = deltas.get(move.productId) ?? {
              id: move.productId,
              available: 0,
              sold: 0,
              first: at,
              last: at,
              updatedAt: e.occurredAt,
            };
            d.available += move.available;
            d.sold += move.sold;
            if (comparePositions(at, d.last) > 0) d.last = at;
            d.updatedAt = e.occurredAt;
            deltas.set(move.productId, d);
          }
          break;
        default:
          assertNever(e);
      }
    }

    // The server runs them in order: a product created and restocked in one batch is inserted, then moved.
    const statements = [];
    if (created.length > 0) {
      statements.push(sql`
        INSERT INTO ${tables.products} (id, sku, name, description, price_cents, available, in_stock, units_sold,
                                        created_at, updated_at, applied_tx, applied_pos)
        SELECT id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at,
               applied_tx::text::xid8, applied_pos
          FROM jsonb_to_recordset(${JSON.stringify(created)}::jsonb) AS x(id uuid, sku text, name text, description text,
               price_cents int, available int, in_stock boolean, units_sold int, created_at timestamptz,
               updated_at timestamptz, applied_tx text, applied_pos bigint)
        ON CONFLICT (id) DO NOTHING`);
    }
    if (deltas.size > 0) {
      const rows = [...deltas.values()].map((d) => ({
        id: d.id,
        available: d.available,
        units_sold: d.sold,
        updated_at: d.updatedAt.toISOString(),
        first_tx: d.first.txId.toString(),
        first_pos: d.first.position.toString(),
        last_tx: d.last.txId.toString(),
        last_pos: d.last.position.toString(),
      }));
      statements.push(sql`
        UPDATE ${tables.products} AS p
           SET available = p.available + d.available,
               in_stock = p.available + d.available > 0,
               units_sold = p.units_sold + d.units_sold,
               updated_at = GREATEST(p.updated_at, d.updated_at),
               applied_tx = d.last_tx::text::xid8,
               applied_pos = d.last_pos
          FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS d(id uuid, available int, units_sold int,
               updated_at timestamptz, first_tx text, first_pos bigint, last_tx text, last_pos bigint)
         WHERE p.id = d.id
           AND (p.applied_tx, p.applied_pos) < (d.first_tx::text::xid8, d.first_pos)`);
    }
    const ids = [...new Set([...created.map((c) => c.id as string), ...deltas.keys()])];
    return { changes: ids.length > 0 ? [{ table: "products", ids }] : [], statements };
  },
});
