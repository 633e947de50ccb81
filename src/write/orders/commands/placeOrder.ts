import { sql } from "../../../db/sql";
import { ORDER_STREAM, type OrderPlaced, type PlacedLine } from "../../../events";
import { badInput, notFound, outOfStock } from "../../../shared/errors";
import { defineCommand, type CommandContext } from "../../command";
import { moveStock } from "../../catalog/inventory";

export interface PlaceOrder {
  idempotencyKey: string;
  lines: { productId: string; quantity: number }[];
}

export const MAX_ORDER_LINES = 100;
export const MAX_LINE_QUANTITY = 10_000;

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price_cents: number;
  available: number;
}

export interface State {
  orderId: string;
  customerId: string;
  /** The products the order names, as the write model has them now (their stock rows locked). */
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

function validate(cmd: PlaceOrder): void {
  if (cmd.lines.length === 0) throw badInput("an order needs at least one line", { field: "lines" });
  if (cmd.lines.length > MAX_ORDER_LINES) {
    throw badInput(`an order has at most ${MAX_ORDER_LINES} lines`, { field: "lines" });
  }
  for (const line of cmd.lines) {
    if (!Number.isInteger(line.quantity) || line.quantity <= 0 || line.quantity > MAX_LINE_QUANTITY) {
      throw badInput(`quantity must be an integer from 1 to ${MAX_LINE_QUANTITY}`, {
        field: "quantity",
        productId: line.productId,
      });
    }
  }
}

/** Pure: the order as placed, priced from the catalog at this moment, to be paid by its deadline. */
export function decide(
  state: State,
  cmd: PlaceOrder,
  { now, settings }: Pick<CommandContext, "now" | "settings">,
): OrderPlaced[] {
  validate(cmd);
  const lines: PlacedLine[] = normalizeLines(cmd.lines).map(({ productId, quantity }) => {
    const product = state.products.get(productId);
    if (!product) throw notFound(`product ${productId} not found`, { productId });
    if (product.available < quantity) {
      throw outOfStock(`only ${product.available} of ${product.sku} available`, {
        productId,
        available: product.available,
      });
    }
    return { productId, sku: product.sku, name: product.name, quantity, unitPriceCents: product.priceCents };
  });
  return [
    {
      type: "OrderPlaced",
      data: {
        orderId: state.orderId,
        customerId: state.customerId,
        lines,
        totalCents: lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0),
        itemCount: lines.reduce((sum, l) => sum + l.quantity, 0),
        placedAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + settings.orderPaymentTimeoutSeconds * 1000).toISOString(),
      },
    },
  ];
}

export const placeOrder = defineCommand<PlaceOrder, State, OrderPlaced, { orderId: string }, ProductRow>({
  name: "placeOrder",
  roles: ["customer"],
  idempotencyKey: (input) => input.idempotencyKey,
  // The same order whatever the line order or split: the key stands for what is ordered.
  fingerprint: (input) => normalizeLines(input.lines),
  // Locks the stock rows in product-id order (the lock sits above the sort), so two orders over
  // the same products queue instead of deadlocking, and what decide sees stays true.
  // write.each, not = ANY(…): planned as the index lookups it is, once (see its migration).
  load: (input) => sql`
    SELECT p.id::text AS id, p.sku, p.name, p.price_cents, i.available
      FROM "write"."each"(${[...new Set(input.lines.map((l) => l.productId))]}::uuid[]) AS w(id, n)
      JOIN "write"."inventory" i ON i.product_id = w.id
      JOIN "write"."products" p ON p.id = i.product_id
     ORDER BY i.product_id
       FOR NO KEY UPDATE OF i`,
  state: (rows, _input, { actor, newId }) => ({
    orderId: newId(),
    customerId: actor.id,
    products: new Map(
      rows.map((p) => [p.id, { sku: p.sku, name: p.name, priceCents: p.price_cents, available: p.available }]),
    ),
  }),
  decide,
  stream: (state) => ({ type: ORDER_STREAM, id: state.orderId, version: 0 }),
  save: (state, events, { now }) => {
    const { lines, totalCents, itemCount, expiresAt } = events[0]!.data;
    // One statement: the stock reserved, the order and its lines.
    return [
      sql`
        WITH moved AS (${moveStock(events)}), placed AS (
          INSERT INTO "write"."orders" (id, customer_id, status, total_cents, item_count, version, placed_at, updated_at, expires_at)
          VALUES (${state.orderId}::uuid, ${state.customerId}, 'PLACED', ${totalCents}::int, ${itemCount}::int, 1,
                  ${now}::timestamptz, ${now}::timestamptz, ${expiresAt}::timestamptz)
        )
        INSERT INTO "write"."order_lines" (order_id, line_no, product_id, quantity, unit_price_cents)
        SELECT ${state.orderId}::uuid, line_no, product_id, quantity, unit_price_cents
          FROM unnest(${lines.map((l) => l.productId)}::uuid[], ${lines.map((l) => l.quantity)}::int[],
                      ${lines.map((l) => l.unitPriceCents)}::int[])
               WITH ORDINALITY AS l(product_id, quantity, unit_price_cents, line_no)`,
    ];
  },
  result: (state) => ({ orderId: state.orderId }),
});
