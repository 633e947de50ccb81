import { badInput, notFound } from "../../../shared/errors";
import type { NewEvent } from "../../../shared/events";
import { ConcurrencyError } from "../../../eventLog/eventLog";
import { defineCommand } from "../../command";
import { PRODUCT_STREAM, type StockAdjusted } from "../catalog.events";

export interface RestockProduct {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  productId: string;
  quantity: number;
}

interface State {
  product: { id: string; version: number } | null;
}

export function decide(state: State, cmd: RestockProduct): NewEvent<StockAdjusted["type"], StockAdjusted["data"]>[] {
  if (!Number.isInteger(cmd.quantity) || cmd.quantity <= 0)
    throw badInput("quantity must be an integer > 0", { field: "quantity" });
  if (!state.product) throw notFound(`product ${cmd.productId} not found`, { productId: cmd.productId });
  return [
    {
      streamId: state.product.id,
      streamType: PRODUCT_STREAM,
      streamVersion: state.product.version + 1,
      type: "StockAdjusted",
      data: { productId: state.product.id, delta: cmd.quantity, reason: "restock" },
    },
  ];
}

export const restockProduct = defineCommand<RestockProduct, { productId: string }>({
  name: "restockProduct",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  resultOf: (streamId) => ({ productId: streamId }),
  async handle(sql, input, { now }) {
    const [product] = await sql.query<{ id: string; version: number }>(
      `SELECT id::text AS id, version FROM "write"."products" WHERE id = $1::uuid`,
      [input.productId],
    );
    const events = decide({ product: product ?? null }, input);
    // The product's version guards its stream; the stock moves in the same statement.
    const saved = sql
      .query(
        `WITH product AS (
         UPDATE "write"."products" SET version = $3, updated_at = $4 WHERE id = $1::uuid AND version = $2 RETURNING id)
       UPDATE "write"."inventory" i SET on_hand = i.on_hand + $5::int, available = i.available + $5::int
         FROM product WHERE i.product_id = product.id RETURNING 1`,
        [input.productId, product!.version, events[0]!.streamVersion, now, input.quantity],
      )
      .then((rows) => {
        if (rows.length !== 1) throw new ConcurrencyError();
      });
    return { events, result: { productId: input.productId }, saved };
  },
});
