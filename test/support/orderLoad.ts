import { randomUUID } from "node:crypto";
import type { TestApp } from "./app";
import { PlaceOrderDocument } from "../../src/storefront/generated/graphql";

/** Orders of one unit from several customers at once on `t`, until stopped: load to run faults under. */
export function orderLoad(t: TestApp, productId: string, clients = 4) {
  let running = true;
  let placed = 0;
  const done = Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let n = 0; running; n++) {
        const res = await t.customer(`load-${c}`).request(PlaceOrderDocument, {
          input: { idempotencyKey: `load-${c}-${n}-${randomUUID()}`, lines: [{ productId, quantity: 1 }] },
        });
        if (res.data?.placeOrder) placed += 1;
      }
    }),
  );
  return {
    /** Orders accepted so far. */
    get placed() {
      return placed;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}
