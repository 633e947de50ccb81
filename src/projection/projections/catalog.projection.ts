import { sql, type Fragment, type Identifier } from "../../db/sql";
import { stockMoves } from "../../events/stock";
import { assertNever, comparePositions, positionOf, type LogPosition } from "../../shared/events";
import { batchRows } from "../../db/batchRows";
import { defineProjection, rowKey } from "../projection";
import { CATALOG_PROJECTION, PRODUCTS_TABLE } from "../names";

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
 * seen the batch's first event for them. read.catalog_counts follows the rows each statement
 * actually inserted or changed (a replayed batch changes neither).
 */
export const catalogProjection = defineProjection({
  name: CATALOG_PROJECTION,
  tables: { products: sql.identifier("read", "products"), counts: sql.identifier("read", "catalog_counts") },
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
        WITH inserted AS (
          INSERT INTO ${tables.products} (id, sku, name, description, price_cents, available, in_stock, units_sold,
                                          created_at, updated_at, applied_tx, applied_pos, row_key)
          SELECT id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at,
                 applied_tx::text::xid8, applied_pos, ${rowKey("id")}
            FROM jsonb_to_recordset(${JSON.stringify(created)}::jsonb) AS x(id uuid, sku text, name text,
                 description text, price_cents int, available int, in_stock boolean, units_sold int,
                 created_at timestamptz, updated_at timestamptz, applied_tx text, applied_pos bigint)
          ON CONFLICT (id) DO NOTHING
          RETURNING in_stock)
        ${countsAdd(tables.counts, sql.fragment`SELECT count(*)::int AS products, (count(*) FILTER (WHERE in_stock))::int AS in_stock FROM inserted`)}`);
    }
    if (deltas.size > 0) {
      const moves = [...deltas.values()];
      const listed = batchRows("read", "d", {
        id: [moves.map((d) => d.id), "uuid"],
        available: [moves.map((d) => d.available), "int"],
        units_sold: [moves.map((d) => d.sold), "int"],
        updated_at: [moves.map((d) => d.updatedAt.toISOString()), "timestamptz"],
        first_tx: [moves.map((d) => d.first.txId.toString()), "text"],
        first_pos: [moves.map((d) => d.first.position.toString()), "bigint"],
        last_tx: [moves.map((d) => d.last.txId.toString()), "text"],
        last_pos: [moves.map((d) => d.last.position.toString()), "bigint"],
      });
      // `was` is the row as it was before this statement: whether it was in stock.
      statements.push(sql`
        WITH moved AS (
          UPDATE ${tables.products} AS p
             SET available = p.available + d.available,
                 in_stock = p.available + d.available > 0,
                 units_sold = p.units_sold + d.units_sold,
                 updated_at = GREATEST(p.updated_at, d.updated_at),
                 applied_tx = d.last_tx::xid8,
                 applied_pos = d.last_pos
            FROM ${listed}, ${tables.products} AS was
           WHERE p.id = d.id AND was.id = d.id
             AND (p.applied_tx, p.applied_pos) < (d.first_tx::xid8, d.first_pos)
          RETURNING was.in_stock AS was, p.in_stock AS now)
        ${countsAdd(tables.counts, sql.fragment`SELECT 0 AS products, (count(*) FILTER (WHERE now AND NOT was) - count(*) FILTER (WHERE was AND NOT now))::int AS in_stock FROM moved`)}`);
    }
    const ids = [...new Set([...created.map((c) => c.id as string), ...deltas.keys()])];
    if (ids.length === 0) return { changes: [], statements };
    // Stock moves alone set only MOVED, on rows that exist: said, so the API's caches keep what those cannot change.
    const movesOnly = events.every((e) => MOVES_STOCK_ONLY.has(e.type));
    return { changes: [{ table: PRODUCTS_TABLE, ids, ...(movesOnly && { updated: MOVED }) }], statements };
  },
});

/** The events whose only effect here is to move stock (a new one is not, until it is listed). */
const MOVES_STOCK_ONLY: ReadonlySet<string> = new Set(["StockAdjusted", "OrderPlaced", "OrderCancelled"]);
/** The columns a stock move sets (not the name or the sku, which decide what a search or a page lists). */
const MOVED = ["available", "in_stock", "units_sold", "updated_at", "applied_tx", "applied_pos"] as const;

/** Adds one row of (products, in_stock) differences to read.catalog_counts (its only row, created at 0 in a rebuild's empty copy). */
function countsAdd(counts: Identifier, difference: Fragment): Fragment {
  return sql.fragment`
    INSERT INTO ${counts} (id, products, in_stock)
    SELECT true, diff.products, diff.in_stock FROM (${difference}) AS diff
    ON CONFLICT (id) DO UPDATE
      SET products = ${counts}.products + excluded.products, in_stock = ${counts}.in_stock + excluded.in_stock`;
}
