import { sql } from "../../../db/sql";
import { PRODUCT_STREAM, type StockAdjusted } from "../../../events";
import { badInput, notFound } from "../../../shared/errors";
import { defineCommand } from "../../command";
import { moveStock } from "../inventory";

export interface RestockProduct {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  productId: string;
  quantity: number;
}

interface ProductVersion {
  id: string;
  version: number;
}

export interface State {
  product: ProductVersion | null;
}

export function decide(state: State, cmd: RestockProduct): StockAdjusted[] {
  if (!Number.isInteger(cmd.quantity) || cmd.quantity <= 0) {
    throw badInput("quantity must be an integer > 0", { field: "quantity" });
  }
  if (!state.product) throw notFound(`product ${cmd.productId} not found`, { productId: cmd.productId });
  return [{ type: "StockAdjusted", data: { productId: state.product.id, delta: cmd.quantity, reason: "restock" } }];
}

export const restockProduct = defineCommand<
  RestockProduct,
  State,
  StockAdjusted,
  { productId: string },
  ProductVersion
>({
  name: "restockProduct",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  load: (input) => sql`SELECT id::text AS id, version FROM "write"."products" WHERE id = ${input.productId}::uuid`,
  state: ([product]) => ({ product: product ?? null }),
  decide,
  stream: (state) => ({ type: PRODUCT_STREAM, id: state.product!.id, version: state.product!.version }),
  // Saved only over the version loaded; a concurrent change is refused anyway by the event
  // log's unique (stream, version).
  save: (state, events, { now }) => [
    sql`UPDATE "write"."products" SET version = ${events.at(-1)!.streamVersion}, updated_at = ${now}
         WHERE id = ${state.product!.id}::uuid AND version = ${state.product!.version}`,
    moveStock(events),
  ],
  result: (state) => ({ productId: state.product!.id }),
});
