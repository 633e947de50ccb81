import { conflict, badInput } from "../../../shared/errors";
import type { NewEvent } from "../../../shared/events";
import { defineCommand } from "../../command";
import { PRODUCT_STREAM, type ProductCreated } from "../catalog.events";

export interface CreateProduct {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  sku: string;
  name: string;
  description?: string | null;
  priceCents: number;
  initialStock: number;
}

interface State {
  skuTaken: boolean;
}

/** Pure: state + command → events, or a domain error. */
export function decide(
  state: State,
  cmd: CreateProduct,
  productId: string,
): NewEvent<ProductCreated["type"], ProductCreated["data"]>[] {
  const sku = cmd.sku.trim();
  const name = cmd.name.trim();
  if (!sku) throw badInput("sku must not be empty", { field: "sku" });
  if (!name) throw badInput("name must not be empty", { field: "name" });
  if (!Number.isInteger(cmd.priceCents) || cmd.priceCents < 0)
    throw badInput("priceCents must be an integer >= 0", { field: "priceCents" });
  if (!Number.isInteger(cmd.initialStock) || cmd.initialStock < 0)
    throw badInput("initialStock must be an integer >= 0", { field: "initialStock" });
  if (state.skuTaken) throw conflict(`a product with sku ${sku} already exists`, { sku });
  return [
    {
      streamId: productId,
      streamType: PRODUCT_STREAM,
      streamVersion: 1,
      type: "ProductCreated",
      data: {
        productId,
        sku,
        name,
        description: cmd.description?.trim() || null,
        priceCents: cmd.priceCents,
        initialStock: cmd.initialStock,
      },
    },
  ];
}

export const createProduct = defineCommand<CreateProduct, { productId: string }>({
  name: "createProduct",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  resultOf: (streamId) => ({ productId: streamId }),
  async handle(sql, input, { now, newId }) {
    const productId = newId();
    const existing = await sql.query(`SELECT 1 FROM "write"."products" WHERE sku = $1`, [input.sku.trim()]);
    const events = decide({ skuTaken: existing.length > 0 }, input, productId);
    const { data } = events[0]!;
    // A concurrent create with the same sku fails on the unique index (→ CONFLICT at the edge).
    const saved = sql.query(
      `WITH product AS (
         INSERT INTO "write"."products" (id, sku, name, description, price_cents, version, created_at, updated_at)
         VALUES ($1::uuid, $2, $3, $4, $5::int, 1, $7, $7) RETURNING id)
       INSERT INTO "write"."inventory" (product_id, on_hand, reserved, available) SELECT id, $6::int, 0, $6::int FROM product`,
      [productId, data.sku, data.name, data.description, data.priceCents, data.initialStock, now],
    );
    return { events, result: { productId }, saved };
  },
});
