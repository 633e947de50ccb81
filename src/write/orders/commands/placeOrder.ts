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
  return [...merged]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([productId, quantity]) => ({ productId, quantity }));
}

export function validate(cmd: PlaceOrder): void {
  checkKey(cmd.idempotencyKey);
  if (cmd.lines.length === 0) throw badInput("an order needs at least one line", { field: "lines" });
  if (cmd.lines.length > MAX_ORDER_LINES)
    throw badInput(`an order has at most ${MAX_ORDER_LINES} lines`, { field: "lines" });
  for (const line of cmd.lines) {
    if (!Number.isInteger(line.quantity) || line.quantity <= 0 || line.quantity > MAX_LINE_QUANTITY) {
      throw badInput(`quantity must be an integer from 1 to ${MAX_LINE_QUANTITY}`, {
        field: "quantity",
        productId: line.productId,
      });
    }
  }
}

/** Pure: the order as placed, priced from the catalog at this moment. */
export function decide(
  state: State,
  cmd: PlaceOrder,
  orderId: string,
  now: Date,
): NewEvent<OrderPlaced["type"], OrderPlaced["data"]>[] {
  validate(cmd);
  const lines: PlacedLine[] = normalizeLines(cmd.lines).map(({ productId, quantity }) => {
    const product = state.products.get(productId);
    if (!product) throw notFound(`product ${productId} not found`, { productId });
    if (product.available < quantity)
      throw outOfStock(`only ${product.available} of ${product.sku} available`, {
        productId,
        available: product.available,
      });
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
  async handle(sql, input, { actor, now, newId }) {
    validate(input);
    const orderId = newId();

    // Round trips are the cost of a command (each statement is a network write and a driver
    // call), so the order takes two statements besides the bus's: load, then save (which leaves
    // in one round trip with the event append).
    const productIds = [...new Set(input.lines.map((l) => l.productId))];
    // Locks the stock rows in product-id order (the lock sits above the sort), so two orders
    // over the same products queue instead of deadlocking, and what decide sees stays true.
    const products = await sql.query<{ id: string; sku: string; name: string; price_cents: number; available: number }>(
      `SELECT p.id::text AS id, p.sku, p.name, p.price_cents, i.available
         FROM "write"."inventory" i JOIN "write"."products" p ON p.id = i.product_id
        WHERE i.product_id = ANY($1::uuid[])
        ORDER BY i.product_id
          FOR NO KEY UPDATE OF i`,
      [productIds],
    );
    const state: State = {
      customerId: actor.id,
      products: new Map(
        products.map((p) => [p.id, { sku: p.sku, name: p.name, priceCents: p.price_cents, available: p.available }]),
      ),
    };
    const events = decide(state, input, orderId, now);
    const order = events[0]!.data;

    // One statement: the conditional reservation of every line (stock can never go below zero;
    // the rows are already ours), the order and its lines.
    const saved = sql
      .query<{ reserved: number }>(
        `WITH line AS (
         SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[]) WITH ORDINALITY AS l(product_id, quantity, unit_price_cents, line_no)
       ), reserved AS (
         UPDATE "write"."inventory" i SET available = i.available - line.quantity, reserved = i.reserved + line.quantity
           FROM line WHERE i.product_id = line.product_id AND i.available >= line.quantity
         RETURNING 1
       ), placed AS (
         INSERT INTO "write"."orders" (id, customer_id, status, total_cents, item_count, version, placed_at, updated_at)
         VALUES ($4::uuid, $5, 'PLACED', $6::int, $7::int, 1, $8::timestamptz, $8::timestamptz)
       ), lines AS (
         INSERT INTO "write"."order_lines" (order_id, line_no, product_id, quantity, unit_price_cents)
         SELECT $4::uuid, line_no, product_id, quantity, unit_price_cents FROM line
       )
       SELECT count(*)::int AS reserved FROM reserved`,
        [
          order.lines.map((l) => l.productId),
          order.lines.map((l) => l.quantity),
          order.lines.map((l) => l.unitPriceCents),
          orderId,
          actor.id,
          order.totalCents,
          order.itemCount,
          now,
        ],
      )
      .then(([row]) => {
        // Cannot happen while the rows are locked; if it did, the transaction must not commit.
        if (row?.reserved !== order.lines.length)
          throw outOfStock("stock changed while the order was placed", { orderId });
      });
    return { events, result: { orderId }, saved };
  },
});
