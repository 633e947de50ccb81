import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, ListenHandlers } from "../../src/db/database";
import { createLogger } from "../../src/logger";
import { ChangeFeed } from "../../src/realtime/changeFeed";
import { CatalogQueries, type ProductRow } from "../../src/query/catalog.queries";
import { OrderQueries } from "../../src/query/orders.queries";
import { CreateProductDocument, RestockProductDocument } from "../../src/storefront/generated/graphql";
import { setupFile } from "../support/app";
import { eventually } from "../support/wait";

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

/** The app's real database, except that this feed's LISTEN connection is "down" until the test says it is back. */
function withControlledListen(db: Database) {
  let handlers: ListenHandlers | undefined;
  const wrapped: Database = {
    ...db,
    listen: async (_channels, h) => ((handlers = h), { close: async () => undefined }),
  };
  return { db: wrapped, reconnect: () => handlers!.onReconnect!() };
}

async function next<T>(iterator: AsyncIterator<T>): Promise<T> {
  const result = await iterator.next();
  if (result.done) throw new Error("subscription ended");
  return result.value;
}

describe("a subscriber whose instance lost its LISTEN connection", () => {
  it("gets the rows that changed during the outage once the connection is back", async () => {
    const { createProduct } = await t.admin.ok(CreateProductDocument, {
      input: { sku: "OUTAGE-1", name: "Outage lamp", priceCents: 900, initialStock: 4 },
    });
    const product = createProduct.product!;
    const { db, reconnect } = withControlledListen(t.app.db!);
    const feed = new ChangeFeed(db, new CatalogQueries(db), new OrderQueries(db), createLogger("silent"));
    await feed.start();
    const everything = feed.products.subscribe(undefined);
    const justThis = feed.products.subscribe([product.id]);
    try {
      // changed through the API while this feed hears nothing
      await t.admin.ok(RestockProductDocument, { input: { productId: product.id, quantity: 6 } });
      await eventually(async () => (await t.app.services.catalog.byId(product.id))?.available === 10, {
        what: "the restock projected",
      });

      reconnect();
      const seenByAll: ProductRow = await next(everything);
      const seenByOne: ProductRow = await next(justThis);
      expect(seenByAll).toMatchObject({ id: product.id, available: 10 });
      expect(seenByOne).toMatchObject({ id: product.id, available: 10 });
    } finally {
      await everything.return?.();
      await justThis.return?.();
      await feed.stop();
    }
  });
});
