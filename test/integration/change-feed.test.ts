import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, ListenHandlers } from "../../src/db/database";
import { createLogger } from "../../src/logger";
import { setTimeout as delay } from "node:timers/promises";
import type { Databases } from "../../src/db/open";
import { retry } from "../../src/operator/commands";
import { deleteCheckpoint, ensureCheckpoints, markFailed, saveCheckpoint } from "../../src/projection/checkpoints";
import type { AnyProjection } from "../../src/projection/projection";
import { comparePositions } from "../../src/shared/events";
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
  return {
    db: wrapped,
    lose: () => handlers!.onLost!(new Error("connection lost (test)")),
    reconnect: () => handlers!.onReconnect!(),
  };
}

async function next<T>(iterator: AsyncIterator<T>): Promise<T> {
  const result = await iterator.next();
  if (result.done) throw new Error("subscription ended");
  return result.value;
}

describe("a subscriber whose instance lost its LISTEN connection", () => {
  it("gets the rows that changed during the outage once the connection is back, and only those", async () => {
    const create = async (sku: string) =>
      (
        await t.admin.ok(CreateProductDocument, {
          input: { sku, name: `Outage ${sku}`, priceCents: 900, initialStock: 4 },
        })
      ).createProduct.product!;
    const product = await create("OUTAGE-1");
    await create("OUTAGE-2"); // changed just before the outage, not during it
    const { db, lose, reconnect } = withControlledListen(t.app.db!);
    const feed = new ChangeFeed(db, new CatalogQueries(db), new OrderQueries(db), createLogger("silent"));
    await feed.start();
    const everything = feed.products.subscribe(undefined);
    const justThis = feed.products.subscribe([product.id]);
    try {
      lose();
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
      // Chosen by the log's positions since the outage, not by time: OUTAGE-2 is not pushed. (A
      // check that something does not come: this feed hears no live change that could push it.)
      expect(await Promise.race([next(everything), delay(300).then(() => "nothing more")])).toBe("nothing more");
    } finally {
      await everything.return?.();
      await justThis.return?.();
      await feed.stop();
    }
  });
});

describe("a projection halted at a poison event", () => {
  it("is not waited for while it is halted (a read-back returns at once), and is again once it moves", async () => {
    const feed = t.app.services.feed;
    const db = t.app.db!.sql;
    const name = "halt-test";
    const farAhead = { txId: 1n << 40n, position: 1n << 40n };
    await ensureCheckpoints(db, [name]);
    try {
      // Waiting already when it halts: answered then, not at the timeout (the test's own would come first).
      const waiting = feed.waitFor(name, farAhead, 600_000);
      await markFailed(db, name, "injected poison", 1n);
      expect(await waiting).toBe(false);
      expect(await feed.waitFor(name, farAhead, 600_000)).toBe(false); // and so is the next one
      // An instance that starts (or listens again) while it is halted knows it from the checkpoints.
      const fresh = new ChangeFeed(
        t.app.db!,
        new CatalogQueries(t.app.db!),
        new OrderQueries(t.app.db!),
        createLogger("silent"),
      );
      await fresh.start();
      try {
        expect(await fresh.waitFor(name, farAhead, 600_000)).toBe(false);
      } finally {
        await fresh.stop();
      }

      // Retried (the operator's command): waited for again at once, before its next batch…
      const dbs = { write: t.app.db, read: t.app.readDb, all: [t.app.readDb], replicas: [] } as unknown as Databases;
      expect((await retry(dbs, { name, handles: [] } as unknown as AnyProjection)).report).toMatch(/will resume/);
      const at = { txId: 5n, position: 5n };
      await eventually(
        async () => {
          const waiting = feed.waitFor(name, at, 50);
          return (await Promise.race([waiting, delay(20).then(() => "pending")])) === "pending";
        },
        { what: "the retry heard: a wait that is not answered at once" },
      );
      const next = feed.waitFor(name, at, 600_000);
      // …which comes, announced as any other.
      await db.query(saveCheckpoint(name, at, "RUNNING", true));
      expect(await next).toBe(true);
      expect(comparePositions(feed.checkpoint(name), at)).toBe(0);
    } finally {
      await db.query(deleteCheckpoint(name));
    }
  });
});
