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
  if (!Number.isInteger(cmd.quantity) || cmd.quantity <= 0) throw badInput("quantity must be an integer > 0", { field: "quantity" });
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
  async handle(tx, input, { now }) {
    const product = await tx.product.findUnique({ where: { id: input.productId }, select: { id: true, version: true } });
    const events = decide({ product }, input);
    const saved = await tx.product.updateMany({
      where: { id: input.productId, version: product!.version },
      data: { version: events[0]!.streamVersion, updatedAt: now },
    });
    if (saved.count !== 1) throw new ConcurrencyError();
    await tx.inventory.update({
      where: { productId: input.productId },
      data: { onHand: { increment: input.quantity }, available: { increment: input.quantity } },
    });
    return { events, result: { productId: input.productId } };
  },
});
