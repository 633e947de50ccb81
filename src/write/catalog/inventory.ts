import { sql, type Fragment } from "../../db/sql";
import { stockMoves } from "../../events/stock";
import type { DomainEvent } from "../../events";

/**
 * Applies the events' stock moves to write.inventory (see events/stock.ts). The inventory's check
 * constraints keep every count at or above zero whatever happens: a move that would oversell
 * fails the whole command. Lock the rows in product-id order when loading (placeOrder and the
 * order commands do), so that two commands over the same products queue instead of deadlocking.
 * A statement of its own, or a part of a command's statement (`WITH moved AS (${moveStock(…)})`).
 */
export function moveStock(events: DomainEvent[]): Fragment {
  const moves = events.flatMap(stockMoves);
  // write.each (not unnest) drives the join: planned as the index lookups it is, once (see its migration).
  return sql.fragment`
    UPDATE "write"."inventory" i
       SET on_hand = i.on_hand + (${moves.map((m) => m.onHand)}::int[])[m.n],
           reserved = i.reserved + (${moves.map((m) => m.reserved)}::int[])[m.n],
           available = i.available + (${moves.map((m) => m.available)}::int[])[m.n]
      FROM "write"."each"(${moves.map((m) => m.productId)}::uuid[]) AS m(product_id, n)
     WHERE i.product_id = m.product_id`;
}
