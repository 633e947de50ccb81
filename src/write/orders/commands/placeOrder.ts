import { badInput, notFound, outOfStock } from "../../../shared/errors";
import type { NewEvent } from "../../../shared/events";
import { defineCommand } from "../../command";
import { checkKey } from "../../idempotency";
import { ORDER_STREAM, type OrderPlaced, type PlacedLine } from "../orders.events";

export interface PlaceOrder {
  idempotencyKey: string;
  lines: { productId: string; quantity: number }[];
}

export const MAX_ORDER_LINES = 100;
export const MAX_LINE_QUANTITY = 10_000;

interface State {
  customerId: string;
  /** The products the order names, as the write model has them now. */
  products: Map<string, { sku: string; name: string; priceCents: number; available: number }>;
}

/** Lines naming the same product are merged, in product-id order (the order rows are locked in). */
export function normalizeLines(lines: PlaceOrder["lines"]): PlaceOrder["lines"] {
  const merged = new Map<string, number>();
  for (const line of lines) merged.set(line.productId, (merged.get(line.productId) ?? 0) + line.quantity);
  return [...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([productId, quantity]) => ({ productId, quantity }));
}

export function validate(cmd: PlaceOrder): void {
  checkKey(cmd.idempotencyKey);
  if (cmd.lines.length === 0) throw badInput("an order needs at least one line", { field: "lines" });
  if (cmd.lines.length > MAX_ORDER_LINES) throw badInput(`an order has at most ${MAX_ORDER_LINES} lines`, { field: "lines" });
  for (const line of cmd.lines) {
    if (!Number.isInteger(line.quantity) || line.quantity <= 0 || line.quantity > MAX_LINE_QUANTITY) {
      throw badInput(`quantity must be an integer from 1 to ${MAX_LINE_QUANTITY}`, { field: "quantity", productId: line.productId });
    }
  }
}

/** Pure: the order as placed, priced from the catalog at this moment. */
export function decide(state: State, cmd: PlaceOrder, orderId: string, now: Date): NewEvent<OrderPlaced["type"], OrderPlaced["data"]>[] {
  validate(cmd);
  const lines: PlacedLine[] = normalizeLines(cmd.lines).map(({ productId, quantity }) => {
    const product = state.products.get(productId);
    if (!product) throw notFound(`product ${productId} not found`, { productId });
    if (product.available < quantity) throw outOfStock(`only ${product.available} of ${product.sku} available`, { productId, available: product.available });
    return { productId, sku: product.sku, name: product.name, quantity, unitPriceCents: product.priceCents };
  });
  return [
    {
      streamId: orderId,
      streamType: ORDER_STREAM,
      streamVersion: 1,
      type: "OrderPlaced",
      data: {
        orderId,
        customerId: state.customerId,
        lines,
        totalCents: lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0),
        itemCount: lines.reduce((sum, l) => sum + l.quantity, 0),
        placedAt: now.toISOString(),
      },
    },
  ];
}

export const placeOrder = defineCommand<PlaceOrder, { orderId: string }>({
  name: "placeOrder",
  roles: ["customer"],
  idempotencyKey: (input) => input.idempotencyKey,
  // The same order whatever the line order or split: the key stands for what is ordered.
  fingerprint: (input) => normalizeLines(input.lines),
  resultOf: (streamId) => ({ orderId: streamId }),
  async handle(tx, input, { actor, now, newId }) {
    validate(input);
    const orderId = newId();

    const productIds = [...new Set(input.lines.map((l) => l.productId))];
    const products = await tx.product.findMany({
      where: { id: { in: productIds } },
      select: { id: true, sku: true, name: true, priceCents: true, inventory: { select: { available: true } } },
    });
    const state: State = {
      customerId: actor.id,
      products: new Map(products.map((p) => [p.id, { sku: p.sku, name: p.name, priceCents: p.priceCents, available: p.inventory?.available ?? 0 }])),
    };
    const events = decide(state, input, orderId, now);
    const order = events[0]!.data;

    // One conditional UPDATE per line, in product-id order: stock can never go below zero,
    // and two orders over the same products lock them in the same order (no deadlock).
    for (const line of order.lines) {
      const reserved = await tx.inventory.updateMany({
        where: { productId: line.productId, available: { gte: line.quantity } },
        data: { available: { decrement: line.quantity }, reserved: { increment: line.quantity } },
      });
      if (reserved.count !== 1) throw outOfStock(`not enough stock of ${line.sku}`, { productId: line.productId });
    }
    // createMany: plain INSERTs, without reading the rows back as create() would.
    await tx.order.createMany({
      data: [{ id: orderId, customerId: actor.id, status: "PLACED", totalCents: order.totalCents, itemCount: order.itemCount, version: 1, placedAt: now, updatedAt: now }],
    });
    await tx.orderLine.createMany({
      data: order.lines.map((l, i) => ({ orderId, lineNo: i + 1, productId: l.productId, quantity: l.quantity, unitPriceCents: l.unitPriceCents })),
    });
    return { events, result: { orderId } };
  },
});
