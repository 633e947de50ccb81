import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHmac, randomUUID } from "node:crypto";
import { setupFile, startTestApp, type TestApp } from "../support/app";
import { collect, token, type GqlError, type GraphQLClient, type GqlResponse } from "../support/client";
import { AUDIENCE, IdentityProvider, ISSUER, newKey, sign, type Key } from "../support/identityProvider";
import { eventually } from "../support/wait";
import {
  CancelOrderDocument,
  CreateProductDocument,
  InventoryChangedDocument,
  MyOrdersDocument,
  OrderDocument,
  OrdersDocument,
  OrderUpdatedDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProductsDocument,
  ProjectionsDocument,
  RelayDocument,
  RestockProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";

// Who may do what: every query, mutation and subscription of the contract (CONTRACT.md) for
// every kind of caller. "customer" owns the order the order operations name; "other" is another
// customer. allow = the operation succeeds; null = it answers null (the order is not confirmed
// to exist); a code = it fails with that extensions.code and writes nothing.
type Who = "anonymous" | "customer" | "other" | "admin";
type Expected = "allow" | "null" | "UNAUTHENTICATED" | "FORBIDDEN" | "NOT_FOUND";

// prettier-ignore
const MATRIX = {
  //                  anonymous            customer (owner)   other customer       admin
  products:        { anonymous: "allow",           customer: "allow",     other: "allow",     admin: "allow"     },
  product:         { anonymous: "allow",           customer: "allow",     other: "allow",     admin: "allow"     },
  order:           { anonymous: "UNAUTHENTICATED", customer: "allow",     other: "null",      admin: "allow"     },
  myOrders:        { anonymous: "UNAUTHENTICATED", customer: "allow",     other: "allow",     admin: "allow"     },
  orders:          { anonymous: "UNAUTHENTICATED", customer: "FORBIDDEN", other: "FORBIDDEN", admin: "allow"     },
  projections:     { anonymous: "UNAUTHENTICATED", customer: "FORBIDDEN", other: "FORBIDDEN", admin: "allow"     },
  // null for admin: this instance has no event broker (relay.test.ts shows the figures where it has one)
  relay:           { anonymous: "UNAUTHENTICATED", customer: "FORBIDDEN", other: "FORBIDDEN", admin: "null"      },
  createProduct:   { anonymous: "UNAUTHENTICATED", customer: "FORBIDDEN", other: "FORBIDDEN", admin: "allow"     },
  restockProduct:  { anonymous: "UNAUTHENTICATED", customer: "FORBIDDEN", other: "FORBIDDEN", admin: "allow"     },
  placeOrder:      { anonymous: "UNAUTHENTICATED", customer: "allow",     other: "allow",     admin: "FORBIDDEN" },
  cancelOrder:     { anonymous: "UNAUTHENTICATED", customer: "allow",     other: "NOT_FOUND", admin: "allow"     },
  payOrder:        { anonymous: "UNAUTHENTICATED", customer: "FORBIDDEN", other: "FORBIDDEN", admin: "allow"     },
  shipOrder:       { anonymous: "UNAUTHENTICATED", customer: "FORBIDDEN", other: "FORBIDDEN", admin: "allow"     },
  inventoryChanged:{ anonymous: "allow",           customer: "allow",     other: "allow",     admin: "allow"     },
  orderUpdated:    { anonymous: "UNAUTHENTICATED", customer: "allow",     other: "NOT_FOUND", admin: "allow"     },
  // resumed from a position: the replay is authorized as the live changes are
  inventoryChangedAfter: { anonymous: "allow",     customer: "allow",     other: "allow",     admin: "allow"     },
  orderUpdatedAfter:     { anonymous: "UNAUTHENTICATED", customer: "allow", other: "NOT_FOUND", admin: "allow"   },
} satisfies Record<string, Record<Who, Expected>>;
type Operation = keyof typeof MATRIX;

const OWNER = "authz-owner";
const OTHER = "authz-other";

let t: Awaited<ReturnType<typeof setupFile>>;
let productId: string;
let ownersOrderId: string;
beforeAll(async () => {
  // "allow" is judged on the payload: the tests' read-your-writes bound is generous (test/support/db.ts).
  t = await setupFile();
  const created = await t.admin.ok(CreateProductDocument, {
    input: { sku: `AUTHZ-${randomUUID().slice(0, 8)}`, name: "Authz product", priceCents: 500, initialStock: 10_000 },
  });
  productId = created.createProduct.product!.id;
  ownersOrderId = await placeOwnersOrder();
});
afterAll(async () => t?.teardown());

const clientOf = (who: Who): GraphQLClient =>
  who === "anonymous" ? t.anonymous : who === "admin" ? t.admin : t.customer(who === "customer" ? OWNER : OTHER);
const idOf = (who: Who) => (who === "customer" ? OWNER : who === "other" ? OTHER : who === "admin" ? "ops" : null);

async function placeOwnersOrder(status: "PLACED" | "PAID" = "PLACED"): Promise<string> {
  const placed = await t
    .customer(OWNER)
    .ok(PlaceOrderDocument, { input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] } });
  const orderId = placed.placeOrder.order!.id;
  if (status === "PAID") await t.admin.ok(PayOrderDocument, { input: { orderId } });
  return orderId;
}

const writeCounts = async () =>
  (
    await t.db
      .sql(`SELECT (SELECT count(*) FROM "write".events) AS events, (SELECT count(*) FROM "write".orders) AS orders,
                          (SELECT count(*) FROM "write".products) AS products, (SELECT sum(on_hand) FROM "write".inventory) AS on_hand,
                          (SELECT count(*) FROM "write".orders WHERE status <> 'PLACED') AS progressed`)
  )[0];

type Outcome = { result: "allow" | "null" } | { result: "error"; code: string | undefined };

/** The outcome of a query or mutation whose payload field is `field`; `allowed` checks what an allowed call returned. */
function outcomeOf<T>(res: GqlResponse<T>, field: string, allowed?: (data: T) => void): Outcome {
  if (res.errors?.length) return { result: "error", code: res.errors[0]!.extensions?.code };
  const value = (res.data as Record<string, unknown> | null | undefined)?.[field];
  if (value === null || value === undefined) return { result: "null" };
  allowed?.(res.data as T);
  return { result: "allow" };
}

/** Subscribes, waits until the server has the subscription (or refused it), triggers a change, and reports what arrived. */
async function subscriptionOutcome<T, V>(
  who: Who,
  document: Parameters<typeof collect<T, V>>[1],
  variables: V,
  topic: "products" | "orders",
  trigger: () => Promise<unknown>,
  allowed: (value: T) => void,
): Promise<Outcome> {
  const ws = clientOf(who).ws();
  const feed = t.app.services.feed[topic];
  const before = feed.size;
  const sub = collect(ws, document, variables);
  try {
    await eventually(() => sub.errors.length > 0 || sub.results.length > 0 || feed.size > before, {
      what: "the subscription to start or be refused",
    });
    const refused =
      (sub.errors[0] as GqlError[] | undefined)?.[0] ?? (sub.results[0]?.errors?.[0] as GqlError | undefined);
    if (refused) return { result: "error", code: refused.extensions?.code };
    await trigger();
    await eventually(() => sub.results.length > 0, { what: "a pushed change" });
    const first = sub.results[0]!;
    if (first.errors?.length) return { result: "error", code: (first.errors[0] as GqlError).extensions?.code };
    allowed(first.data as T);
    return { result: "allow" };
  } finally {
    sub.unsubscribe();
    await ws.dispose();
    // The server drops the subscription when the socket closes: wait, so the next count starts clean.
    await eventually(() => feed.size <= before, { what: "the subscription to end" });
  }
}

const RUN: Record<Operation, (who: Who) => Promise<Outcome>> = {
  products: async (who) =>
    outcomeOf(await clientOf(who).request(ProductsDocument, { first: 5 }), "products", (d) =>
      expect(d.products.totalCount).toBeGreaterThan(0),
    ),
  product: async (who) =>
    outcomeOf(await clientOf(who).request(ProductDocument, { id: productId }), "product", (d) =>
      expect(d.product?.id).toBe(productId),
    ),
  order: async (who) =>
    outcomeOf(await clientOf(who).request(OrderDocument, { id: ownersOrderId }), "order", (d) =>
      expect(d.order?.id).toBe(ownersOrderId),
    ),
  myOrders: async (who) =>
    outcomeOf(await clientOf(who).request(MyOrdersDocument, { first: 100 }), "myOrders", (d) => {
      // Only the caller's own orders: the owner sees theirs, nobody sees someone else's.
      for (const edge of d.myOrders.edges) expect(edge.node.customerId).toBe(idOf(who));
      if (who === "customer") expect(d.myOrders.edges.map((e) => e.node.id)).toContain(ownersOrderId);
    }),
  orders: async (who) =>
    outcomeOf(await clientOf(who).request(OrdersDocument, { first: 100 }), "orders", (d) =>
      expect(d.orders.edges.map((e) => e.node.id)).toContain(ownersOrderId),
    ),
  projections: async (who) =>
    outcomeOf(await clientOf(who).request(ProjectionsDocument), "projections", (d) =>
      expect(d.projections.map((p) => p.name)).toContain("catalog"),
    ),
  relay: async (who) => outcomeOf(await clientOf(who).request(RelayDocument), "relay"),
  createProduct: async (who) => {
    const sku = `AUTHZ-NEW-${randomUUID().slice(0, 8)}`;
    return outcomeOf(
      await clientOf(who).request(CreateProductDocument, {
        input: { sku, name: "New", priceCents: 1, initialStock: 1 },
      }),
      "createProduct",
      (d) => expect(d.createProduct.product?.sku).toBe(sku),
    );
  },
  restockProduct: async (who) =>
    outcomeOf(
      await clientOf(who).request(RestockProductDocument, { input: { productId, quantity: 1 } }),
      "restockProduct",
    ),
  placeOrder: async (who) =>
    outcomeOf(
      await clientOf(who).request(PlaceOrderDocument, {
        input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] },
      }),
      "placeOrder",
      (d) => expect(d.placeOrder.order?.customerId).toBe(idOf(who)),
    ),
  cancelOrder: async (who) => {
    const orderId = await placeOwnersOrder();
    return outcomeOf(await clientOf(who).request(CancelOrderDocument, { input: { orderId } }), "cancelOrder", (d) =>
      expect(d.cancelOrder.order?.status).toBe("CANCELLED"),
    );
  },
  payOrder: async (who) => {
    const orderId = await placeOwnersOrder();
    return outcomeOf(await clientOf(who).request(PayOrderDocument, { input: { orderId } }), "payOrder", (d) =>
      expect(d.payOrder.order?.status).toBe("PAID"),
    );
  },
  shipOrder: async (who) => {
    const orderId = await placeOwnersOrder("PAID");
    return outcomeOf(await clientOf(who).request(ShipOrderDocument, { input: { orderId } }), "shipOrder", (d) =>
      expect(d.shipOrder.order?.status).toBe("SHIPPED"),
    );
  },
  inventoryChanged: (who) =>
    subscriptionOutcome(
      who,
      InventoryChangedDocument,
      { productIds: [productId] },
      "products",
      () => t.admin.ok(RestockProductDocument, { input: { productId, quantity: 1 } }),
      (d) => expect(d.inventoryChanged.id).toBe(productId),
    ),
  inventoryChangedAfter: (who) =>
    subscriptionOutcome(
      who,
      InventoryChangedDocument,
      { productIds: [productId], after: "0" }, // everything since the start: the product's row first
      "products",
      () => t.admin.ok(RestockProductDocument, { input: { productId, quantity: 1 } }),
      (d) => expect(d.inventoryChanged.id).toBe(productId),
    ),
  orderUpdatedAfter: async (who) => {
    const orderId = await placeOwnersOrder();
    return subscriptionOutcome(
      who,
      OrderUpdatedDocument,
      { orderId, after: "0" }, // the order's current row first
      "orders",
      () => t.admin.ok(PayOrderDocument, { input: { orderId } }),
      (d) => expect(d.orderUpdated).toMatchObject({ id: orderId, status: "PLACED" }),
    );
  },
  orderUpdated: async (who) => {
    const orderId = await placeOwnersOrder();
    return subscriptionOutcome(
      who,
      OrderUpdatedDocument,
      { orderId },
      "orders",
      () => t.admin.ok(PayOrderDocument, { input: { orderId } }),
      (d) => expect(d.orderUpdated).toMatchObject({ id: orderId, status: "PAID" }),
    );
  },
};

const WHO: Who[] = ["anonymous", "customer", "other", "admin"];

describe("the authorization matrix", () => {
  for (const operation of Object.keys(MATRIX) as Operation[]) {
    describe(operation, () => {
      for (const who of WHO) {
        const expected: Expected = MATRIX[operation][who];
        it(`${who === "customer" ? "the owning customer" : who === "other" ? "another customer" : who}: ${expected}`, async () => {
          const outcome = await RUN[operation](who);
          expect(outcome).toEqual(
            expected === "allow" || expected === "null" ? { result: expected } : { result: "error", code: expected },
          );
        });
      }
    });
  }

  it("writes nothing when a mutation is denied", async () => {
    const orderId = await placeOwnersOrder();
    const before = await writeCounts();
    const denied: Promise<GqlResponse<unknown>>[] = [
      t.anonymous.request(CreateProductDocument, {
        input: { sku: `X-${randomUUID()}`, name: "x", priceCents: 1, initialStock: 1 },
      }),
      t.customer(OWNER).request(CreateProductDocument, {
        input: { sku: `X-${randomUUID()}`, name: "x", priceCents: 1, initialStock: 1 },
      }),
      t.customer(OWNER).request(RestockProductDocument, { input: { productId, quantity: 5 } }),
      t.anonymous.request(PlaceOrderDocument, { input: { idempotencyKey: "x", lines: [{ productId, quantity: 1 }] } }),
      t.admin.request(PlaceOrderDocument, { input: { idempotencyKey: "x", lines: [{ productId, quantity: 1 }] } }),
      t.customer(OTHER).request(CancelOrderDocument, { input: { orderId } }),
      t.anonymous.request(CancelOrderDocument, { input: { orderId } }),
      t.customer(OWNER).request(PayOrderDocument, { input: { orderId } }),
      t.customer(OWNER).request(ShipOrderDocument, { input: { orderId } }),
    ];
    for (const res of await Promise.all(denied))
      expect(res.errors?.[0]?.extensions?.code).toMatch(/^(UNAUTHENTICATED|FORBIDDEN|NOT_FOUND)$/);
    expect(await writeCounts()).toEqual(before);
  });
});

// Tokens from an identity provider that must not pass (CONTRACT.md, "Auth"), on an instance
// configured with its JWKS alone: each refused like no token could be (HTTP 401 UNAUTHENTICATED,
// graphql-ws 4401) on a public query, a mutation and a subscription, writing nothing.
describe("tokens from an identity provider that must not pass", () => {
  let idp: IdentityProvider;
  let oidc: TestApp;
  let trusted: Key;
  let ec: Key;
  let stranger: Key;
  let retired: Key;
  beforeAll(async () => {
    idp = await IdentityProvider.start();
    [trusted, ec, stranger, retired] = await Promise.all([
      newKey("idp-rsa", "RS256"),
      newKey("idp-ec", "ES256"),
      newKey("idp-rsa", "RS256"), // an attacker's key under the provider's kid
      newKey("idp-retired", "RS256"),
    ]);
    idp.published = [trusted, ec]; // `retired` was rotated out before this instance started
    oidc = await startTestApp(t.db, { jwtSecret: undefined, authJwks: idp.options(), runProjector: false });
  });
  afterAll(async () => {
    await oidc?.stop();
    await idp?.stop();
  });

  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const claims = () => ({
    sub: OWNER,
    role: "admin",
    iss: ISSUER,
    aud: AUDIENCE,
    exp: Math.floor(Date.now() / 1000) + 600,
  });
  const BAD_TOKENS: Record<string, () => Promise<string>> = {
    "a forged signature (a customer's token made admin)": async () => {
      const [header, , signature] = (await sign(trusted, { sub: OWNER, role: "customer" })).split(".");
      return `${header}.${b64(claims())}.${signature}`;
    },
    "kid confusion (an attacker's key under the provider's kid)": () => sign(stranger, claims()),
    "kid confusion (the provider's EC key, naming its RSA key)": () => sign(ec, claims(), { kid: trusted.kid }),
    "HS256 made with the provider's public key": async () => {
      const unsigned = `${b64({ alg: "HS256", kid: trusted.kid })}.${b64(claims())}`;
      return `${unsigned}.${createHmac("sha256", trusted.publicPem).update(unsigned).digest("base64url")}`;
    },
    "alg none": async () => `${b64({ alg: "none", kid: trusted.kid })}.${b64(claims())}.`,
    "a key the provider rotated out": () => sign(retired, claims()),
    "an expired token": () => sign(trusted, claims(), { expiresIn: "-1m" }),
    "HS256 with a shared secret, where only the provider signs": async () => token("admin", OWNER),
  };

  for (const [name, make] of Object.entries(BAD_TOKENS))
    it(`refuses ${name}: 401 on a public query and a mutation, 4401 on graphql-ws, nothing written`, async () => {
      const client = oidc.anonymous.as(await make());
      const before = await writeCounts();
      const query = await client.request(ProductsDocument, { first: 1 });
      const mutation = await client.request(PlaceOrderDocument, {
        input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] },
      });
      for (const res of [query, mutation]) {
        expect(res.status).toBe(401);
        expect(res.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
        expect(res.data ?? null).toBeNull();
      }
      const ws = client.ws();
      const sub = collect(ws, InventoryChangedDocument, { productIds: [productId] });
      await eventually(() => sub.errors.length > 0, { what: "the socket to be closed" });
      expect((sub.errors[0] as { code?: number }).code).toBe(4401);
      await ws.dispose();
      expect(await writeCounts()).toEqual(before);
    });

  it("lets the provider's own tokens through (the control)", async () => {
    const customer = oidc.anonymous.as(await sign(ec, { sub: OTHER, role: "customer" }));
    expect((await customer.request(MyOrdersDocument, { first: 1 })).errors).toBeUndefined();
  });
});

// The mutation rate (MUTATIONS_PER_SECOND): an actor over it is refused mutations only, and
// nobody else is touched.
describe("an actor over its mutation rate", () => {
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startTestApp(t.db, { mutationsPerSecond: 1, mutationBurst: 1, runProjector: false });
  });
  afterAll(async () => limited?.stop());

  it("gets RATE_LIMITED on mutations and writes nothing, while its queries and subscriptions, and other actors' mutations, go on", async () => {
    const place = (who: string) =>
      limited
        .customer(who)
        .request(PlaceOrderDocument, { input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] } });
    // Two at once against a bucket of one: whichever arrives second is refused (sent one after the
    // other, a slow first answer would let the bucket fill again).
    const before = await writeCounts();
    const answers = await Promise.all([place("authz-rate"), place("authz-rate")]);
    const accepted = answers.filter((a) => !a.errors);
    const refused = answers.filter((a) => a.errors);
    expect(accepted).toHaveLength(1);
    expect(refused.map((a) => [a.status, a.errors?.[0]?.extensions?.code])).toEqual([[429, "RATE_LIMITED"]]);
    // the accepted order's event and row, nothing of the refused one
    const after = await writeCounts();
    expect(after).toEqual({
      ...before,
      events: String(Number(before!.events) + 1),
      orders: String(Number(before!.orders) + 1),
    });
    const own = limited.customer("authz-rate");
    expect((await own.request(MyOrdersDocument, { first: 1 })).errors).toBeUndefined();
    const ws = own.ws();
    const sub = collect(ws, InventoryChangedDocument, { productIds: [productId] });
    await eventually(() => limited.app.services.feed.products.size > 0, { what: "the subscription to start" });
    expect(sub.errors).toEqual([]);
    await ws.dispose();
    expect((await place("authz-rate-other")).errors).toBeUndefined();
  });
});
