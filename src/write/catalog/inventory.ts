import { batchRows } from "../../db/batchRows";
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
  const m = batchRows("write", "m", {
    product_id: [moves.map((move) => move.productId), "uuid"],
    on_hand: [moves.map((move) => move.onHand), "int"],
    reserved: [moves.map((move) => move.reserved), "int"],
    available: [moves.map((move) => move.available), "int"],
  });
  return sql.fragment`
    UPDATE "write"."inventory" i
       SET on_hand = i.on_hand + m.on_hand, reserved = i.reserved + m.reserved, available = i.available + m.available
      FROM ${m}
     WHERE i.product_id = m.product_id`;
}
