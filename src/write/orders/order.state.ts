import type { Tx } from "../../db/database";
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
export async function loadOrder(tx: Tx, orderId: string, actor: CommandContext["actor"]): Promise<OrderState> {
  const order = await tx.order.findUnique({
    where: { id: orderId },
    select: { id: true, customerId: true, status: true, version: true, lines: { select: { productId: true, quantity: true }, orderBy: { productId: "asc" } } },
  });
  if (!order || (actor.role !== "admin" && order.customerId !== actor.id)) throw notFound(`order ${orderId} not found`, { orderId });
  return { ...order, status: order.status as OrderStatus };
}

/** Saves the new status only if nobody changed the order since it was loaded. */
export async function saveOrderStatus(tx: Tx, order: OrderState, status: OrderStatus, version: number, now: Date): Promise<void> {
  const saved = await tx.order.updateMany({ where: { id: order.id, version: order.version }, data: { status, version, updatedAt: now } });
  if (saved.count !== 1) throw new ConcurrencyError();
}
