import { sql } from "../../../db/sql";
import { PRODUCT_STREAM, type ProductCreated } from "../../../events";
import { badInput, conflict } from "../../../shared/errors";
import { defineCommand } from "../../command";

export interface CreateProduct {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  sku: string;
  name: string;
  description?: string | null;
  priceCents: number;
  initialStock: number;
}

export interface State {
  productId: string;
  skuTaken: boolean;
}

/** Pure: state + command → events, or a domain error. */
export function decide(state: State, cmd: CreateProduct): ProductCreated[] {
  const sku = cmd.sku.trim();
  const name = cmd.name.trim();
  if (!sku) throw badInput("sku must not be empty", { field: "sku" });
  if (!name) throw badInput("name must not be empty", { field: "name" });
  if (!Number.isInteger(cmd.priceCents) || cmd.priceCents < 0) {
    throw badInput("priceCents must be an integer >= 0", { field: "priceCents" });
  }
  if (!Number.isInteger(cmd.initialStock) || cmd.initialStock < 0) {
    throw badInput("initialStock must be an integer >= 0", { field: "initialStock" });
  }
  if (state.skuTaken) throw conflict(`a product with sku ${sku} already exists`, { sku });
  return [
    {
      type: "ProductCreated",
      data: {
        productId: state.productId,
        sku,
        name,
        description: cmd.description?.trim() || null,
        priceCents: cmd.priceCents,
        initialStock: cmd.initialStock,
      },
    },
  ];
}

export const createProduct = defineCommand<CreateProduct, State, ProductCreated, { productId: string }>({
  name: "createProduct",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  load: (input) => sql`SELECT 1 FROM "write"."products" WHERE sku = ${input.sku.trim()}`,
  state: (rows, _input, { newId }) => ({ productId: newId(), skuTaken: rows.length > 0 }),
  decide,
  stream: (state) => ({ type: PRODUCT_STREAM, id: state.productId, version: 0 }),
  // A concurrent create with the same sku fails on the unique index (→ CONFLICT at the edge).
  save: (_state, [created], { now }) => {
    const { productId, sku, name, description, priceCents, initialStock } = created!.data;
    return [
      sql`
        WITH product AS (
          INSERT INTO "write"."products" (id, sku, name, description, price_cents, version, created_at, updated_at)
          VALUES (${productId}::uuid, ${sku}, ${name}, ${description}, ${priceCents}::int, 1, ${now}, ${now}) RETURNING id)
        INSERT INTO "write"."inventory" (product_id, on_hand, reserved, available)
        SELECT id, ${initialStock}::int, 0, ${initialStock}::int FROM product`,
    ];
  },
  result: (state) => ({ productId: state.productId }),
});
