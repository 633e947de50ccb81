import type { Sql } from "../../db/database";
import { ConcurrencyError } from "../../eventLog/eventLog";
import { notFound } from "../../shared/errors";
import type { CommandContext } from "../command";
import type { OrderStatus } from "./orders.events";

/** What the order commands after placing need to decide. */
export interface OrderState {
  id: string;
  customerId: string;
  status: OrderStatus;
  version: number;
  lines: { productId: string; quantity: number }[];
}

/**
 * Loads an order the actor may act on. A customer asking about someone else's order gets
 * NOT_FOUND, the same answer as for an order that does not exist: ids are not confirmed.
 */
export async function loadOrder(sql: Sql, orderId: string, actor: CommandContext["actor"]): Promise<OrderState> {
  const [order] = await sql.query<OrderState>(
    `SELECT o.id::text AS id, o.customer_id AS "customerId", o.status, o.version,
            COALESCE((SELECT json_agg(json_build_object('productId', l.product_id, 'quantity', l.quantity) ORDER BY l.product_id)
                        FROM "write"."order_lines" l WHERE l.order_id = o.id), '[]') AS lines
       FROM "write"."orders" o WHERE o.id = $1::uuid`,
    [orderId],
  );
  if (!order || (actor.role !== "admin" && order.customerId !== actor.id))
    throw notFound(`order ${orderId} not found`, { orderId });
  return order;
}

/** Saves the new status only if nobody changed the order since it was loaded (issued at once; see Decided.saved). */
export function saveOrderStatus(
  sql: Sql,
  order: OrderState,
  status: OrderStatus,
  version: number,
  now: Date,
): Promise<void> {
  return sql
    .query(
      `UPDATE "write"."orders" SET status = $3, version = $4, updated_at = $5 WHERE id = $1::uuid AND version = $2 RETURNING 1`,
      [order.id, order.version, status, version, now],
    )
    .then((saved) => {
      if (saved.length !== 1) throw new ConcurrencyError();
    });
}

/**
 * Moves the stock of an order's lines by `per unit` × quantity: cancelling releases the
 * reservation (reserved → available), shipping consumes it (reserved and on hand go down).
 * The rows are locked in product-id order first, as placeOrder locks them: no deadlock between the two.
 * Both statements are issued at once (the server runs them in order; see Decided.saved).
 */
export async function moveStock(
  sql: Sql,
  lines: OrderState["lines"],
  perUnit: { onHand: number; reserved: number; available: number },
): Promise<void> {
  const productIds = lines.map((l) => l.productId);
  const locked = sql.query(
    `SELECT 1 FROM "write"."inventory" WHERE product_id = ANY($1::uuid[]) ORDER BY product_id FOR NO KEY UPDATE`,
    [productIds],
  );
  const moved = sql.query(
    `UPDATE "write"."inventory" i
        SET on_hand = i.on_hand + $3::int * l.quantity, reserved = i.reserved + $4::int * l.quantity, available = i.available + $5::int * l.quantity
       FROM unnest($1::uuid[], $2::int[]) AS l(product_id, quantity)
      WHERE i.product_id = l.product_id`,
    [productIds, lines.map((l) => l.quantity), perUnit.onHand, perUnit.reserved, perUnit.available],
  );
  await Promise.all([locked, moved]);
}
