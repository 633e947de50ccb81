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
  return sql.fragment`
    UPDATE "write"."inventory" i
       SET on_hand = i.on_hand + m.on_hand, reserved = i.reserved + m.reserved, available = i.available + m.available
      FROM unnest(${moves.map((m) => m.productId)}::uuid[], ${moves.map((m) => m.onHand)}::int[],
                  ${moves.map((m) => m.reserved)}::int[], ${moves.map((m) => m.available)}::int[])
           AS m(product_id, on_hand, reserved, available)
     WHERE i.product_id = m.product_id`;
}
