import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { randomUUID } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { setupFile } from "../support/app";
import { token } from "../support/client";
import type { Role } from "../../src/shared/auth";
import { customerContext, launchChromium } from "../support/browser";
import {
  CreateProductDocument,
  PayOrderDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// The storefront (src/storefront) in Debian's Chromium, driven by playwright-core: two
// customers on the same product, live stock, a clear refusal, a restock, live order status.
// `.ci/run` installs the chromium package when it is missing; no browser is ever downloaded.

const ROOT = resolve(import.meta.dirname, "../..");
const ARTIFACTS = resolve(import.meta.dirname, "artifacts");

let t: Awaited<ReturnType<typeof setupFile>>;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  t = await setupFile();
  browser = await launchChromium();
});
afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await t?.teardown();
});

async function customerPage(customerId: string, role?: Role): Promise<{ page: Page; offMachine: string[] }> {
  const { context, offMachine } = await customerContext(browser, customerId, role);
  contexts.push(context);
  return { page: await context.newPage(), offMachine };
}

const stockOf = (page: Page, sku: string) => page.locator(`[data-sku="${sku}"] [data-testid="stock"]`);

async function showProduct(page: Page, sku: string) {
  await page.goto(t.url);
  await page.getByLabel("Search").fill(sku);
  await expect.poll(() => page.locator("[data-testid=product]").count(), { timeout: 10_000 }).toBe(1);
}

describe("the storefront in Chromium", () => {
  it("two customers on one product: live stock, a clear refusal, a restock, live order status", async () => {
    const sku = `WEB-${randomUUID().slice(0, 8)}`;
    const { createProduct } = await t.admin.ok(CreateProductDocument, {
      input: { sku, name: `Browser lamp ${sku}`, priceCents: 1999, initialStock: 3 },
    });
    const productId = createProduct.product!.id;
    const a = await customerPage("web-customer-a");
    const b = await customerPage("web-customer-b");

    const started = Date.now();
    await showProduct(a.page, sku);
    const firstProductMs = Date.now() - started;
    await showProduct(b.page, sku);
    await expect.poll(() => stockOf(b.page, sku).textContent(), { timeout: 10_000 }).toBe("Low stock · 3 left");

    // B puts one in the cart while there is stock; A buys all three, clicking twice.
    await b.page.locator(`[data-sku="${sku}"]`).getByRole("button", { name: "Add to cart" }).click();
    for (let i = 0; i < 3; i++)
      await a.page.locator(`[data-sku="${sku}"]`).getByRole("button", { name: "Add to cart" }).click();
    await a.page.getByRole("link", { name: /Cart/ }).click();
    await a.page.getByRole("button", { name: "Place order" }).dblclick();
    await a.page.getByRole("status").filter({ hasText: "Order placed" }).waitFor();
    const ordered = Date.now();

    // B's open page shows the product sold out, without a reload.
    await expect.poll(() => stockOf(b.page, sku).textContent(), { timeout: 5_000 }).toBe("Out of stock");
    const liveMs = Date.now() - ordered;
    await b.page.screenshot({ path: resolve(ARTIFACTS, "storefront-out-of-stock.png") });

    // B's attempt: refused, in words.
    await b.page.getByRole("link", { name: /Cart/ }).click();
    await b.page.getByRole("button", { name: "Place order" }).click();
    await expect
      .poll(() => b.page.getByRole("alert").textContent(), { timeout: 10_000 })
      .toBe(`Browser lamp ${sku} is sold out`);

    // The admin restocks; B's catalog shows it; B orders.
    await b.page.getByRole("link", { name: "Catalog" }).click();
    await b.page.getByLabel("Search").fill(sku);
    await t.admin.ok(RestockProductDocument, { input: { productId, quantity: 10 } });
    await expect.poll(() => stockOf(b.page, sku).textContent(), { timeout: 5_000 }).toBe("In stock · 10 left");
    await b.page.getByRole("link", { name: /Cart/ }).click();
    await b.page.getByRole("button", { name: "Place order" }).click();
    await b.page.getByRole("status").filter({ hasText: "Order placed" }).waitFor();

    // The double click placed one order; A's order list follows its status live.
    const orders = await t.db.sql<{ id: string }>(
      `SELECT id::text AS id FROM "write".orders WHERE customer_id = 'web-customer-a'`,
    );
    expect(orders).toHaveLength(1);
    await a.page.getByRole("link", { name: "My orders", exact: true }).click();
    const status = a.page.locator("[data-testid=order-status]");
    await expect.poll(() => status.textContent(), { timeout: 10_000 }).toBe("PLACED");
    await expect.poll(() => a.page.locator("[data-testid=deadline]").count(), { timeout: 10_000 }).toBe(1);
    await t.admin.ok(PayOrderDocument, { input: { orderId: orders[0]!.id } });
    await expect.poll(() => status.textContent(), { timeout: 5_000 }).toBe("PAID");
    await a.page.screenshot({ path: resolve(ARTIFACTS, "storefront-my-orders.png") });

    expect([...a.offMachine, ...b.offMachine]).toEqual([]);
    console.log(
      `storefront: first product shown ${firstProductMs} ms after navigation; sold out on the other page ${liveMs} ms after the order`,
    );
  });

  it("has no serious or critical accessibility violation (axe-core) on the catalog and the cart", async () => {
    const { page } = await customerPage("web-customer-axe");
    const axe = readFileSync(resolve(ROOT, "node_modules/axe-core/axe.min.js"), "utf8");
    for (const hash of ["#/", "#/cart"]) {
      await page.goto(`${t.url}/${hash}`);
      await page.locator("main h1").waitFor();
      await page.evaluate(axe); // through the DevTools protocol: the page's CSP refuses inline scripts
      const violations = await page.evaluate(async () => {
        const result = await (
          globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string }[] }> } }
        ).axe.run();
        return result.violations.map((v) => ({ id: v.id, impact: v.impact }));
      });
      expect(violations.filter((v) => v.impact === "serious" || v.impact === "critical")).toEqual([]);
    }
  });

  it("serves a GraphQL IDE at /graphql to a browser, from the server alone, that runs a query", async () => {
    // Signed in as an admin: with only trusted documents (as here), an admin's documents still run.
    const { page, offMachine } = await customerPage("web-admin-ide", "admin");
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    await page.goto(`${t.url}/graphql`);
    // Run it until there is a result: on a busy machine the IDE may still be loading its editor
    // (lazy chunks) or the schema when the button first shows.
    const result = page.locator(".result-window");
    await expect
      .poll(
        async () => {
          await page.getByRole("button", { name: /Execute query/i }).click();
          return (await result.textContent({ timeout: 1000 }).catch(() => "")) ?? "";
        },
        { timeout: 20_000, interval: 1000 },
      )
      .toContain('"totalCount"');
    await page.screenshot({ path: resolve(ARTIFACTS, "graphiql.png") });
    expect(offMachine).toEqual([]);
    expect(problems).toEqual([]);
    // A client asking for JSON still gets the API.
    const api = await fetch(`${t.url}/graphql?query=%7B__typename%7D`, {
      headers: {
        accept: "application/json",
        "apollo-require-preflight": "true",
        authorization: `Bearer ${token("admin", "ops")}`,
      },
    });
    expect(await api.json()).toEqual({ data: { __typename: "Query" } });
  });

  it("answers GET / with the page under a CSP without inline scripts, and refuses demo tokens in production", async () => {
    const response = await fetch(`${t.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await response.text()).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const minted = await fetch(`${t.url}/dev/token`, { method: "POST", body: JSON.stringify({ role: "admin" }) });
    expect(minted.status).toBe(200);
    const production = await setupFile({ devTokens: false });
    try {
      const refused = await fetch(`${production.url}/dev/token`, {
        method: "POST",
        body: JSON.stringify({ role: "admin" }),
      });
      expect(refused.status).toBe(404);
    } finally {
      await production.teardown();
    }
  });
});
