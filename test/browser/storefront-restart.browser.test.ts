import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { Browser } from "playwright-core";
import { customerContext, launchChromium } from "../support/browser";
import { GraphQLClient, token } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { freePort } from "../support/ports";
import { ServerProcess } from "../reliability/serverProcess";
import { CreateProductDocument, RestockProductDocument } from "../../src/storefront/generated/graphql";

// The storefront survives a server restart: its socket reconnects, it refetches what it shows
// (a restock made through another instance while its own was down), and live changes flow again.

let db: TestDatabase;
let browser: Browser;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  db = await freshDatabase();
  for (let i = 0; i < 2; i++) servers.push(new ServerProcess(db.url, await freePort(), { INSTANCE_ID: `web-${i}` }));
  await Promise.all(servers.map((s) => s.start()));
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => s.stop()));
  await db?.drop();
});

describe("the storefront across a server restart", () => {
  it(
    "reconnects, shows what changed while the server was down, and receives live changes again",
    { timeout: 120_000 },
    async () => {
      const [own, other] = servers as [ServerProcess, ServerProcess];
      const admin = new GraphQLClient(other.url).as(token("admin", "ops"));
      const sku = `RESTART-${randomUUID().slice(0, 8)}`;
      const { createProduct } = await admin.ok(CreateProductDocument, {
        input: { sku, name: `Restart kettle ${sku}`, priceCents: 2500, initialStock: 10 },
      });
      const productId = createProduct.product!.id;

      const { context, offMachine } = await customerContext(browser, "web-restart");
      const page = await context.newPage();
      await page.goto(own.url);
      await page.getByLabel("Search").fill(sku);
      const stock = page.locator(`[data-sku="${sku}"] [data-testid="stock"]`);
      await expect.poll(() => stock.textContent(), { timeout: 10_000 }).toBe("In stock · 10 left");

      await own.stop();
      await admin.ok(RestockProductDocument, { input: { productId, quantity: 5 } }); // through the other instance
      await own.start(); // the same port
      const restarted = Date.now();
      await expect.poll(() => stock.textContent(), { timeout: 20_000 }).toBe("In stock · 15 left");
      console.log(`storefront: fresh stock shown ${Date.now() - restarted} ms after the server was ready again`);
      await admin.ok(RestockProductDocument, { input: { productId, quantity: 1 } });
      await expect.poll(() => stock.textContent(), { timeout: 10_000 }).toBe("In stock · 16 left");
      expect(offMachine).toEqual([]);
      await context.close();
    },
  );
});
