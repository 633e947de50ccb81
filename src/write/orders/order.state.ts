import { sql, type Statement } from "../../db/sql";
import {
  ORDER_STREAM,
  STATUS_AFTER,
  type CancellationReason,
  type OrderCancelled,
  type OrderEvent,
  type OrderStatus,
} from "../../events";
import type { NewEvent } from "../../shared/events";
import { notFound } from "../../shared/errors";
import type { CommandContext, StreamRef } from "../command";

/** What the order commands after placing need to decide. */
export interface OrderState {
  id: string;
  customerId: string;
  status: OrderStatus;
  version: number;
  lines: { productId: string; quantity: number }[];
  /** The payment deadline while PLACED; null otherwise, and for orders placed before deadlines existed. */
  expiresAt: Date | null;
}

/**
 * Loads an order. With lockStock, also locks the inventory rows of its lines, in product-id order
 * as placeOrder locks them (no deadlock between the two): for the commands that move its stock.
 */
function loadOrder(orderId: string, lockStock: boolean): Statement<OrderState> {
  return sql`
    WITH locked AS (
      SELECT i.product_id FROM "write"."inventory" i
       WHERE ${lockStock}::boolean AND i.product_id IN (SELECT product_id FROM "write"."order_lines" WHERE order_id = ${orderId}::uuid)
       ORDER BY i.product_id FOR NO KEY UPDATE
    )
    SELECT o.id::text AS id, o.customer_id AS "customerId", o.status, o.version, o.expires_at AS "expiresAt",
           COALESCE((SELECT json_agg(json_build_object('productId', l.product_id, 'quantity', l.quantity) ORDER BY l.product_id)
                       FROM "write"."order_lines" l WHERE l.order_id = o.id), '[]') AS lines,
           (SELECT count(*) FROM locked) AS locked
      FROM "write"."orders" o WHERE o.id = ${orderId}::uuid`;
}

/**
 * The order the actor may act on (an admin and the system: any). A customer asking about
 * someone else's order gets NOT_FOUND, the same answer as for an order that does not exist:
 * ids are not confirmed.
 */
function orderOf(order: OrderState | undefined, orderId: string, actor: CommandContext["actor"]): OrderState {
  if (!order || (actor.role === "customer" && order.customerId !== actor.id)) {
    throw notFound(`order ${orderId} not found`, { orderId });
  }
  return order;
}

const orderStream = (order: OrderState): StreamRef => ({ type: ORDER_STREAM, id: order.id, version: order.version });

/** What an order command takes: the order, and optionally the client's idempotency key. */
export interface OrderCommand {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  orderId: string;
}

/**
 * What every command on an existing order shares: its key, its load (the order, with its stock
 * rows locked when the command moves stock), its state, its stream and its answer.
 */
export function onOrder(options: { lockStock: boolean }) {
  return {
    idempotencyKey: (input: OrderCommand) => input.idempotencyKey,
    fingerprint: ({ idempotencyKey: _key, ...request }: OrderCommand) => request,
    load: (input: OrderCommand) => loadOrder(input.orderId, options.lockStock),
    state: ([row]: OrderState[], input: OrderCommand, { actor }: CommandContext) => orderOf(row, input.orderId, actor),
    stream: orderStream,
    result: (order: OrderState) => ({ orderId: order.id }),
  };
}

/**
 * The order's status and version after the events (every event after OrderPlaced takes it out
 * of PLACED, and its payment deadline with it). Saved only over the version loaded; a
 * concurrent change is refused anyway by the event log's unique (stream, version).
 */
export function saveStatus(order: OrderState, events: NewEvent<OrderEvent>[], now: Date): Statement<never> {
  const last = events.at(-1)!;
  return sql`
    UPDATE "write"."orders" SET status = ${STATUS_AFTER[last.type]}, version = ${last.streamVersion}, updated_at = ${now},
                                expires_at = NULL
     WHERE id = ${order.id}::uuid AND version = ${order.version}`;
}

/** Whether the order's payment deadline has passed: it is the system's to cancel, no longer anyone's to pay. */
export const paymentOverdue = (order: OrderState, now: Date): boolean =>
  order.status === "PLACED" && order.expiresAt !== null && order.expiresAt.getTime() <= now.getTime();

/** The order cancelled, for a reason: its reserved stock (every line) is released. */
export const cancellation = (order: OrderState, reason: CancellationReason): OrderCancelled => ({
  type: "OrderCancelled",
  data: { orderId: order.id, customerId: order.customerId, previousStatus: order.status, lines: order.lines, reason },
});
