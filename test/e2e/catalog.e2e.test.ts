import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { getIntrospectionQuery, parse, type ExecutionResult } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { setupFile, startTestApp, type TestApp } from "../support/app";
import { collect, type GraphQLClient } from "../support/client";
import { eventually } from "../support/wait";
import {
  CancelOrderDocument,
  CreateProductDocument,
  InventoryChangedDocument,
  MyOrdersDocument,
  OrderDocument,
  OrderUpdatedDocument,
  OrdersDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProductsDocument,
  ProjectionsDocument,
  RestockProductDocument,
  ShipOrderDocument,
  type ProductFieldsFragment,
} from "../../src/storefront/generated/graphql";

/** Deadline for pushes and fallbacks: generous, because other test files share the two cores. */
const SLOW = { timeoutMs: 15_000 };

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

let productNo = 0;
async function createProduct(
  input: { name?: string; sku?: string; stock?: number; priceCents?: number } = {},
): Promise<ProductFieldsFragment> {
  productNo += 1;
  const sku = input.sku ?? `CAT-${productNo}-${randomUUID().slice(0, 6)}`;
  const data = await t.admin.ok(CreateProductDocument, {
    input: {
      sku,
      name: input.name ?? `Catalog item ${productNo}`,
      priceCents: input.priceCents ?? 500,
      initialStock: input.stock ?? 10,
    },
  });
  // A setup step, not the test's subject: on a loaded machine the bounded read-your-writes wait
  // may run out, so fall back to waiting for the row.
  return (
    data.createProduct.product ??
    (await eventually(async () => (await t.anonymous.ok(ProductDocument, { sku })).product, SLOW))
  );
}

async function placeOrder(customer: string, productId: string, quantity = 1) {
  const client = t.customer(customer);
  const data = await client.ok(PlaceOrderDocument, {
    input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity }] },
  });
  if (data.placeOrder.order) return data.placeOrder.order;
  const [placed] = await t.db.sql<{ stream_id: string }>(`SELECT stream_id FROM "write".events WHERE position = $1`, [
    data.placeOrder.position,
  ]);
  return eventually(async () => (await client.ok(OrderDocument, { id: placed!.stream_id })).order, SLOW);
}

// ---------- subscriptions ----------

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await eventually(() => t.app.services.feed.subscriberCount === 0, {
    ...SLOW,
    what: "every subscription to be closed",
  });
});

/** Opens a graphql-ws connection as `client` and subscribes; closed after the test. */
function subscribe<T, V>(client: GraphQLClient, document: TypedDocumentNode<T, V>, variables: V) {
  const ws = client.ws();
  const sub = collect(ws, document, variables);
  cleanups.push(async () => {
    sub.unsubscribe();
    await ws.dispose();
  });
  return sub;
}

/** Changes reach only subscriptions the server has registered: wait until it has `n` of them. */
const registered = (n: number) =>
  eventually(() => t.app.services.feed.subscriberCount === n, { ...SLOW, what: `${n} registered subscription(s)` });

/** The error a rejected subscription ended with: a GraphQL error (in a result or an error message) or a close event. */
function rejection<T>(sub: {
  results: ExecutionResult<T>[];
  errors: unknown[];
}): { code?: unknown; closeCode?: number } | undefined {
  const inResult = sub.results.find((r) => r.errors?.length)?.errors?.[0];
  if (inResult) return { code: inResult.extensions?.code };
  const error = sub.errors[0];
  if (Array.isArray(error)) return { code: (error[0] as { extensions?: { code?: unknown } })?.extensions?.code };
  if (error && typeof error === "object" && "code" in error) return { closeCode: (error as { code: number }).code };
  return undefined;
}

describe("creating a product", () => {
  it("answers with the event's log position and the product as the catalog now shows it (read-your-writes)", async () => {
    const res = await t.admin.ok(CreateProductDocument, {
      input: {
        sku: "RYW-KETTLE",
        name: "Stovetop kettle",
        description: "  1.5 l, steel ",
        priceCents: 3450,
        initialStock: 4,
      },
    });
    const { position, product } = res.createProduct;
    expect(position).toMatch(/^\d+$/);
    expect(product).toMatchObject({
      sku: "RYW-KETTLE",
      name: "Stovetop kettle",
      description: "1.5 l, steel",
      priceCents: 3450,
      available: 4,
      inStock: true,
      unitsSold: 0,
    });

    const [event] = await t.db.sql<{ type: string; stream_id: string }>(
      `SELECT type, stream_id FROM "write".events WHERE position = $1`,
      [position],
    );
    expect(event).toEqual({ type: "ProductCreated", stream_id: product!.id });
    // The very next read, by anyone, sees it.
    expect((await t.anonymous.ok(ProductDocument, { id: product!.id })).product).toEqual(product);
  });

  it("answers a restock with the new stock already in the catalog", async () => {
    const product = await createProduct({ stock: 2 });
    const res = await t.admin.ok(RestockProductDocument, { input: { productId: product.id, quantity: 8 } });
    expect(res.restockProduct.product).toMatchObject({ id: product.id, available: 10, inStock: true });
    expect(BigInt(res.restockProduct.position)).toBeGreaterThan(0n);
  });
});

describe("looking up one product", () => {
  it("finds a product by id and by sku, and answers null for one that does not exist", async () => {
    const product = await createProduct({ sku: "LOOKUP-1" });
    expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product).toEqual(product);
    expect((await t.anonymous.ok(ProductDocument, { id: product.id.toUpperCase() })).product?.id).toBe(product.id);
    expect((await t.anonymous.ok(ProductDocument, { sku: "LOOKUP-1" })).product).toEqual(product);
    expect((await t.anonymous.ok(ProductDocument, { id: randomUUID() })).product).toBeNull();
    expect((await t.anonymous.ok(ProductDocument, { sku: "NO-SUCH-SKU" })).product).toBeNull();
  });

  it("asks for exactly one of id and sku", async () => {
    const product = await createProduct();
    for (const variables of [{}, { id: product.id, sku: product.sku }]) {
      const res = await t.anonymous.request(ProductDocument, variables);
      expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    }
  });
});

describe("searching the catalog", () => {
  let teapot: ProductFieldsFragment;
  let soldOut: ProductFieldsFragment;
  beforeAll(async () => {
    teapot = await createProduct({ name: "Blue Teapot", sku: "SRCH-TP-BLUE" });
    soldOut = await createProduct({ name: "Red Teapot", sku: "SRCH-TP-RED", stock: 0 });
    await createProduct({ name: "Teacup", sku: "SRCH-CUP" });
  });

  const search = async (filter: { search?: string; inStock?: boolean }, first = 50) =>
    (await t.anonymous.ok(ProductsDocument, { filter, first })).products;

  it("matches the name case-insensitively, anywhere in it", async () => {
    const found = await search({ search: "tEaPoT" });
    expect(found.edges.map((e) => e.node.name)).toEqual(["Blue Teapot", "Red Teapot"]);
    expect(found.totalCount).toBe(2);
  });

  it("matches the sku case-insensitively", async () => {
    const found = await search({ search: "srch-tp-blue" });
    expect(found.edges.map((e) => e.node)).toEqual([teapot]);
  });

  it("filters on stock: inStock true hides a sold-out product, false shows only it", async () => {
    expect((await search({ search: "srch-tp", inStock: true })).edges.map((e) => e.node.id)).toEqual([teapot.id]);
    const out = await search({ search: "srch-tp", inStock: false });
    expect(out.edges.map((e) => e.node)).toEqual([
      expect.objectContaining({ id: soldOut.id, available: 0, inStock: false }),
    ]);
    expect(out.totalCount).toBe(1);
  });

  it("finds nothing for a search that matches nothing", async () => {
    const none = await search({ search: "no product is called this" });
    expect(none).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: 0 });
  });
});

describe("paging through the catalog", () => {
  beforeAll(async () => {
    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        createProduct({ name: `Paged item ${String(25 - i).padStart(2, "0")}`, sku: `PAGE-${i}` }),
      ),
    );
  });

  it("returns 25 products in pages of 10, 10 and 5, sorted by name, without overlap", async () => {
    const filter = { search: "paged item" };
    const pages = [];
    let after: string | null | undefined;
    do {
      const page = (await t.anonymous.ok(ProductsDocument, { filter, first: 10, after })).products;
      pages.push(page);
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : undefined;
    } while (after && pages.length < 5);

    expect(pages.map((p) => p.edges.length)).toEqual([10, 10, 5]);
    expect(pages.map((p) => p.pageInfo.hasNextPage)).toEqual([true, true, false]);
    expect(pages.map((p) => p.totalCount)).toEqual([25, 25, 25]);
    for (const page of pages) expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)!.cursor);
    const names = pages.flatMap((p) => p.edges.map((e) => e.node.name));
    expect(names).toEqual(Array.from({ length: 25 }, (_, i) => `Paged item ${String(i + 1).padStart(2, "0")}`));
    expect(new Set(pages.flatMap((p) => p.edges.map((e) => e.node.id))).size).toBe(25);
  });

  it("allows first: 100 and rejects first: 101 as BAD_USER_INPUT", async () => {
    expect((await t.anonymous.ok(ProductsDocument, { first: 100 })).products.edges.length).toBeLessThanOrEqual(100);
    const res = await t.anonymous.request(ProductsDocument, { first: 101 });
    expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const negative = await t.anonymous.request(ProductsDocument, { first: -1 });
    expect(negative.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it.each([
    ["garbage", "not a cursor!"],
    ["base64 of the wrong shape", Buffer.from(JSON.stringify({ name: "x" })).toString("base64url")],
  ])("rejects a cursor that is %s as BAD_USER_INPUT", async (_what, after) => {
    const res = await t.anonymous.request(ProductsDocument, { first: 10, after });
    expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});

describe("watching inventory live (inventoryChanged)", () => {
  it("pushes a watched product's row after a restock and after an order, and never another product's", async () => {
    const watched = await createProduct({ stock: 5, name: "Watched lamp" });
    const other = await createProduct({ stock: 5, name: "Unwatched lamp" });
    const mine = subscribe(t.anonymous, InventoryChangedDocument, { productIds: [watched.id] });
    const everything = subscribe(t.anonymous, InventoryChangedDocument, {});
    await registered(2);

    // The other product changes first; once the all-products subscriber has it, it was fanned
    // out, so a leak to `mine` would arrive before anything that follows on that connection.
    await t.admin.ok(RestockProductDocument, { input: { productId: other.id, quantity: 1 } });
    await eventually(() => everything.results.some((r) => r.data?.inventoryChanged.id === other.id), {
      ...SLOW,
      what: "the other product's change",
    });

    await t.admin.ok(RestockProductDocument, { input: { productId: watched.id, quantity: 3 } });
    await eventually(() => mine.results.some((r) => r.data?.inventoryChanged.available === 8), {
      ...SLOW,
      what: "the restock to be pushed",
    });
    await placeOrder("lamp-buyer", watched.id, 2);
    await eventually(() => mine.results.some((r) => r.data?.inventoryChanged.available === 6), {
      ...SLOW,
      what: "the order to be pushed",
    });

    const pushed = mine.results.map((r) => r.data?.inventoryChanged);
    expect(pushed.every((p) => p?.id === watched.id)).toBe(true);
    expect(pushed.at(-1)).toMatchObject({
      id: watched.id,
      sku: watched.sku,
      available: 6,
      inStock: true,
      unitsSold: 2,
    });
    expect(mine.errors).toEqual([]);

    await eventually(
      () =>
        everything.results.some(
          (r) => r.data?.inventoryChanged.id === watched.id && r.data.inventoryChanged.available === 6,
        ),
      { ...SLOW, what: "the all-products subscriber to see the order" },
    );
    const seenByAll = new Set(everything.results.map((r) => r.data?.inventoryChanged.id));
    expect(seenByAll).toEqual(new Set([other.id, watched.id]));
  });

  it("pushes a product that sells out with inStock false", async () => {
    const last = await createProduct({ stock: 1 });
    const sub = subscribe(t.anonymous, InventoryChangedDocument, { productIds: [last.id] });
    await registered(1);
    await placeOrder("last-buyer", last.id, 1);
    await eventually(() => sub.results.some((r) => r.data?.inventoryChanged.inStock === false), {
      ...SLOW,
      what: "the sell-out to be pushed",
    });
    expect(sub.results.at(-1)?.data?.inventoryChanged).toMatchObject({ available: 0, inStock: false, unitsSold: 1 });
  });

  it("pushes a hot product's states in order, ending on its last, when it changes in batch after batch", async () => {
    const hot = await createProduct({ stock: 1000 });
    const sub = subscribe(t.anonymous, InventoryChangedDocument, { productIds: [hot.id] });
    await registered(1);
    // 40 orders at once from 40 customers: the projector applies them over several batches.
    await Promise.all(Array.from({ length: 40 }, (_, i) => placeOrder(`hot-${i}`, hot.id, 1)));
    await eventually(() => sub.results.some((r) => r.data?.inventoryChanged.available === 960), {
      ...SLOW,
      what: "the last state (960 available) pushed",
    });
    const pushed = sub.results.map((r) => r.data!.inventoryChanged);
    // never a state older than one before it
    const positions = pushed.map((p) => BigInt(p.position));
    expect(positions).toEqual([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(pushed.at(-1)).toMatchObject({ available: 960, unitsSold: 40 });
  });

  it("rejects productIds that are not UUIDs with BAD_USER_INPUT", async () => {
    const sub = subscribe(t.anonymous, InventoryChangedDocument, { productIds: ["lamp"] });
    await eventually(() => rejection(sub), { ...SLOW, what: "the subscription to be rejected" });
    expect(rejection(sub)).toEqual({ code: "BAD_USER_INPUT" });
  });
});

describe("watching an order live (orderUpdated)", () => {
  it("pushes pay and ship to the order's customer and to an admin", async () => {
    const product = await createProduct({ stock: 5 });
    const order = await placeOrder("watcher", product.id, 1);
    const owner = subscribe(t.customer("watcher"), OrderUpdatedDocument, { orderId: order.id });
    const admin = subscribe(t.admin, OrderUpdatedDocument, { orderId: order.id });
    await registered(2);

    const pushed = (sub: typeof owner, status: string) =>
      sub.results.some((r) => r.data?.orderUpdated.status === status);
    await t.admin.ok(PayOrderDocument, { input: { orderId: order.id } });
    await eventually(() => pushed(owner, "PAID") && pushed(admin, "PAID"), { ...SLOW, what: "PAID to be pushed" });
    await t.admin.ok(ShipOrderDocument, { input: { orderId: order.id } });
    for (const sub of [owner, admin]) {
      await eventually(() => sub.results.some((r) => r.data?.orderUpdated.status === "SHIPPED"), {
        ...SLOW,
        what: "SHIPPED to be pushed",
      });
      const statuses = sub.results.map((r) => r.data?.orderUpdated.status);
      expect(statuses).toEqual(["PAID", "SHIPPED"]);
      expect(sub.results.at(-1)?.data?.orderUpdated).toMatchObject({
        id: order.id,
        customerId: "watcher",
        totalCents: 500,
        itemCount: 1,
      });
      expect(sub.errors).toEqual([]);
    }
  });

  it("pushes a cancel to the order's customer, and nothing about the customer's other orders", async () => {
    const product = await createProduct({ stock: 5 });
    const watched = await placeOrder("canceller", product.id, 1);
    const unwatched = await placeOrder("canceller", product.id, 1);
    const owner = subscribe(t.customer("canceller"), OrderUpdatedDocument, { orderId: watched.id });
    const barrier = subscribe(t.admin, OrderUpdatedDocument, { orderId: unwatched.id });
    await registered(2);

    await t.customer("canceller").ok(CancelOrderDocument, { input: { orderId: unwatched.id } });
    await eventually(() => barrier.results.length > 0, { ...SLOW, what: "the other order's change to be pushed" });
    await t.customer("canceller").ok(CancelOrderDocument, { input: { orderId: watched.id } });
    await eventually(() => owner.results.length > 0, { ...SLOW, what: "the cancel to be pushed" });
    expect(owner.results.map((r) => [r.data?.orderUpdated.id, r.data?.orderUpdated.status])).toEqual([
      [watched.id, "CANCELLED"],
    ]);
  });

  it("refuses another customer's subscription to an order", async () => {
    const product = await createProduct({ stock: 5 });
    const order = await placeOrder("private-owner", product.id, 1);
    const snoop = subscribe(t.customer("snoop"), OrderUpdatedDocument, { orderId: order.id });
    await eventually(() => rejection(snoop), { ...SLOW, what: "the subscription to be rejected" });
    expect(rejection(snoop)).toEqual({ code: "NOT_FOUND" });
    // and nothing of it is left subscribed: no change of the order could reach it
    expect(t.app.services.feed.subscriberCount).toBe(0);
  });

  it("refuses an anonymous subscription to an order", async () => {
    const product = await createProduct({ stock: 5 });
    const order = await placeOrder("anon-target", product.id, 1);
    const anonymous = subscribe(t.anonymous, OrderUpdatedDocument, { orderId: order.id });
    await eventually(() => rejection(anonymous), { ...SLOW, what: "the subscription to be rejected" });
    expect(rejection(anonymous)).toEqual({ code: "UNAUTHENTICATED" });
  });

  it("closes a connection whose token does not verify (4401, as graphql-ws clients expect)", async () => {
    const product = await createProduct({ stock: 5 });
    const order = await placeOrder("bad-token-target", product.id, 1);
    const forged = subscribe(t.anonymous.as("not-a-jwt"), OrderUpdatedDocument, { orderId: order.id });
    await eventually(() => rejection(forged), { ...SLOW, what: "the connection to be closed" });
    expect(rejection(forged)).toEqual({ closeCode: 4401 });
  });
});

describe("listing orders", () => {
  it("shows a customer only their own orders, newest first, in pages", async () => {
    const product = await createProduct({ stock: 50 });
    const placed = [];
    for (let i = 0; i < 3; i++) placed.push(await placeOrder("lister", product.id, i + 1));
    await placeOrder("someone-else", product.id, 1);

    const lister = t.customer("lister");
    const first = (await lister.ok(MyOrdersDocument, { first: 2 })).myOrders;
    expect(first.totalCount).toBe(3);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = (await lister.ok(MyOrdersDocument, { first: 2, after: first.pageInfo.endCursor })).myOrders;
    expect(second.pageInfo).toEqual({ hasNextPage: false, endCursor: second.edges.at(-1)!.cursor });
    const ids = [...first.edges, ...second.edges].map((e) => e.node.id);
    expect(ids).toEqual(placed.map((o) => o.id).reverse());
    for (const edge of [...first.edges, ...second.edges]) expect(edge.node.customerId).toBe("lister");
  });

  it("answers myOrders without a token with UNAUTHENTICATED", async () => {
    const res = await t.anonymous.request(MyOrdersDocument, {});
    expect(res.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("rejects a bad myOrders cursor as BAD_USER_INPUT", async () => {
    const res = await t.customer("lister").request(MyOrdersDocument, {
      first: 2,
      after: Buffer.from(JSON.stringify(["not a date", "x"])).toString("base64url"),
    });
    expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("shows an admin every order, filtered by status", async () => {
    const product = await createProduct({ stock: 50 });
    const paid = await placeOrder("status-a", product.id, 1);
    const placed = await placeOrder("status-b", product.id, 1);
    await t.admin.ok(PayOrderDocument, { input: { orderId: paid.id } });

    const paidOrders = (await t.admin.ok(OrdersDocument, { status: "PAID", first: 100 })).orders;
    expect(paidOrders.edges.every((e) => e.node.status === "PAID")).toBe(true);
    expect(paidOrders.edges.map((e) => e.node.id)).toContain(paid.id);
    expect(paidOrders.edges.map((e) => e.node.id)).not.toContain(placed.id);
    const [{ count }] = (await t.db.sql<{ count: number }>(
      `SELECT count(*)::int AS count FROM "read".orders WHERE status = 'PAID'`,
    )) as [{ count: number }];
    expect(paidOrders.totalCount).toBe(count);

    const all = (await t.admin.ok(OrdersDocument, { first: 100 })).orders;
    expect(all.edges.map((e) => e.node.id)).toEqual(expect.arrayContaining([paid.id, placed.id]));
    const placedAts = all.edges.map((e) => e.node.placedAt);
    expect(placedAts).toEqual([...placedAts].sort().reverse());
  });

  it("answers a customer asking for all orders with FORBIDDEN", async () => {
    const res = await t.customer("nosy").request(OrdersDocument, {});
    expect(res.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect(res.data ?? null).toBeNull();
  });
});

describe("projection status", () => {
  it("shows an admin every projection, caught up and running", async () => {
    await createProduct();
    const statuses = await eventually(
      async () => {
        const { projections } = await t.admin.ok(ProjectionsDocument, {});
        return projections.every((p) => p.lagEvents === 0) && projections;
      },
      { ...SLOW, what: "every projection to catch up" },
    );
    expect(statuses.map((p) => p.name)).toEqual(expect.arrayContaining(["catalog", "orders"]));
    for (const p of statuses) expect(p).toMatchObject({ status: "RUNNING", lastError: null, lagEvents: 0 });
    const [{ max }] = (await t.db.sql<{ max: string }>(`SELECT max(position)::text AS max FROM "write".events`)) as [
      { max: string },
    ];
    expect(statuses.some((p) => p.position === max)).toBe(true);
  });

  it("answers a customer with FORBIDDEN and anonymous with UNAUTHENTICATED", async () => {
    expect((await t.customer("nosy").request(ProjectionsDocument, {})).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await t.anonymous.request(ProjectionsDocument, {})).errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });
});

describe("query limits", () => {
  // Documents of its own, as any client may send where trusted documents are not required.
  let open: TestApp;
  beforeAll(async () => {
    open = await startTestApp(t.db, { trustedDocuments: "off", runProjector: false });
  });
  afterAll(async () => open?.stop());
  const typed = <T = unknown>(source: string) =>
    parse(source) as unknown as TypedDocumentNode<T, Record<string, unknown>>;
  // Our schema nests at most 5 levels, so only introspection can go deeper: 20 levels here,
  // past even the introspection bound (15) that lets the standard introspection query through.
  const tooDeep = typed(
    `query TooDeep { __schema { types { fields { type { ${"ofType { ".repeat(15)}name${" }".repeat(15)} } } } } }`,
  );
  const productPage = (alias: string, first: string) =>
    `${alias}: products(first: ${first}) { edges { node { id sku name description priceCents available inStock unitsSold updatedAt } } }`;
  const tooComplex = typed(`query TooComplex { ${["a", "b", "c"].map((a) => productPage(a, "100")).join(" ")} }`);
  const tooComplexByVariable = typed(
    `query TooComplexVar($n: Int) { ${["a", "b", "c"].map((a) => productPage(a, "$n")).join(" ")} }`,
  );

  it("rejects a query nested deeper than the limit with GRAPHQL_VALIDATION_FAILED and no data", async () => {
    const res = await open.anonymous.request(tooDeep, {});
    expect(res.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(res.errors?.[0]?.message).toMatch(/depth/);
    expect(res.data ?? null).toBeNull();
  });

  it("answers the standard introspection query that GraphiQL and codegen send", async () => {
    const res = await open.anonymous.request(typed(getIntrospectionQuery()), {});
    expect(res.errors).toBeUndefined();
    expect(JSON.stringify(res.data)).toContain("inventoryChanged");
  });

  it("rejects three 100-product pages in one query as too complex, with GRAPHQL_VALIDATION_FAILED and no data", async () => {
    const res = await open.anonymous.request(tooComplex, {});
    expect(res.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(res.errors?.[0]?.message).toMatch(/complexity/);
    expect(res.data ?? null).toBeNull();
  });

  it("counts a page size passed as a variable", async () => {
    const res = await open.anonymous.request(tooComplexByVariable, { n: 100 });
    expect(res.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(res.data ?? null).toBeNull();
    const small = await open.anonymous.request(tooComplexByVariable, { n: 5 });
    expect(small.errors).toBeUndefined();
  });

  it("applies the same limits to queries sent over graphql-ws", async () => {
    for (const document of [tooDeep, tooComplex]) {
      const sub = subscribe(open.anonymous, document, {});
      await eventually(
        () =>
          rejection(sub) ??
          (sub.completed && sub.results.length > 0 ? { code: "no error", data: sub.results } : undefined),
        { ...SLOW, what: "an answer" },
      );
      expect(rejection(sub)).toEqual({ code: "GRAPHQL_VALIDATION_FAILED" });
      expect(sub.results.filter((r) => r.data)).toEqual([]);
    }
  });

  it("refuses a document of thousands of nested fragments at parse time, over HTTP and graphql-ws alike", async () => {
    const huge = `subscription Huge { inventoryChanged { ${"... on Product { ".repeat(3000)}id${" }".repeat(3000)} } }`;
    const http = await open.anonymous.raw(JSON.stringify({ query: huge }));
    expect(http.errors?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
    const ws = open.anonymous.ws();
    cleanups.push(async () => ws.dispose());
    const errors: unknown[] = [];
    ws.subscribe(
      { query: huge },
      { next: () => undefined, error: (e) => void errors.push(e), complete: () => undefined },
    );
    await eventually(() => errors.length > 0, { ...SLOW, what: "the parse error" });
    expect((errors[0] as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
  });
});
