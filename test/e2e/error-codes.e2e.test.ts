import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { Client } from "graphql-ws";
import { setupFile, startTestApp, type TestApp } from "../support/app";
import { documentOf, type GraphQLClient, type GqlError } from "../support/client";
import { CreateProductDocument, PlaceOrderDocument, ProductsDocument } from "../../src/storefront/generated/graphql";

// Every error code of the contract (CONTRACT.md, "Errors"), the same whether the operation
// comes over HTTP or over graphql-ws. (RATE_LIMITED: test/e2e/limits.e2e.test.ts, on both; OVERLOADED:
// test/e2e/overload.e2e.test.ts, on both.)
// Trusted documents are off here but in the last case: the others send documents of their own.

let t: Awaited<ReturnType<typeof setupFile>>;
let queriesOnly: TestApp;
let trustedOnly: TestApp;
let productId: string;
let placedOrderId: string;
const sockets: Client[] = [];

beforeAll(async () => {
  t = await setupFile({ trustedDocuments: "off" }); // documents of its own, as any client may send without trusted documents
  queriesOnly = await startTestApp(t.db, {
    services: new Set(["queries"]),
    runProjector: false,
    trustedDocuments: "off",
  });
  trustedOnly = await startTestApp(t.db, { runProjector: false, trustedDocuments: "only" });
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku: `ERR-${randomUUID().slice(0, 8)}`, name: "Error lamp", priceCents: 100, initialStock: 2 },
  });
  productId = createProduct.product!.id;
  const placed = await t
    .customer("err-owner")
    .ok(PlaceOrderDocument, { input: { idempotencyKey: "err-1", lines: [{ productId, quantity: 1 }] } });
  placedOrderId = placed.placeOrder.order!.id;
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.dispose()));
  await queriesOnly?.stop();
  await trustedOnly?.stop();
  await t?.teardown();
});

/** A document as text, or a request naming one by id. */
type Sent = string | { documentId: string; query?: string };
const payloadOf = (sent: Sent) => (typeof sent === "string" ? { query: sent } : { query: "", ...sent });

/** The first error's code over HTTP (POST /graphql). */
async function overHttp(client: GraphQLClient, sent: Sent): Promise<unknown> {
  const res = await client.raw(JSON.stringify(payloadOf(sent)));
  return res.errors?.[0]?.extensions?.code;
}

/** The first error's code over graphql-ws: an `error` message (the operation refused) or errors in a result. */
function overWs(client: GraphQLClient, sent: Sent): Promise<unknown> {
  const ws = client.ws();
  sockets.push(ws);
  return new Promise((resolve, reject) => {
    ws.subscribe(payloadOf(sent), {
      next: (result) => result.errors?.length && resolve((result.errors[0] as GqlError).extensions?.code),
      error: (error) =>
        Array.isArray(error)
          ? resolve((error[0] as GqlError).extensions?.code)
          : reject(new Error(`socket error: ${String((error as Error)?.message ?? error)}`)),
      complete: () => resolve(undefined),
    });
  });
}

const CASES: { code: string; who: () => GraphQLClient; query: () => string }[] = [
  { code: "GRAPHQL_PARSE_FAILED", who: () => t.anonymous, query: () => "query {" },
  { code: "GRAPHQL_VALIDATION_FAILED", who: () => t.anonymous, query: () => "{ products { nope } }" },
  {
    code: "GRAPHQL_VALIDATION_FAILED",
    who: () => t.anonymous,
    query: () => "subscription { inventoryChanged { nope } }",
  },
  { code: "BAD_USER_INPUT", who: () => t.anonymous, query: () => "{ products(first: 1000) { totalCount } }" },
  {
    code: "UNAUTHENTICATED",
    who: () => t.anonymous,
    query: () => `mutation { payOrder(input: { orderId: "${placedOrderId}" }) { position } }`,
  },
  {
    code: "FORBIDDEN",
    who: () => t.customer("err-owner"),
    query: () => `mutation { payOrder(input: { orderId: "${placedOrderId}" }) { position } }`,
  },
  {
    code: "NOT_FOUND",
    who: () => t.customer("err-other"),
    query: () => `mutation { cancelOrder(input: { orderId: "${placedOrderId}" }) { position } }`,
  },
  {
    code: "OUT_OF_STOCK",
    who: () => t.customer("err-buyer"),
    query: () =>
      `mutation { placeOrder(input: { idempotencyKey: "${randomUUID()}", lines: [{ productId: "${productId}", quantity: 5 }] }) { position } }`,
  },
  {
    code: "CONFLICT",
    who: () => t.customer("err-owner"),
    query: () =>
      `mutation { placeOrder(input: { idempotencyKey: "err-1", lines: [{ productId: "${productId}", quantity: 2 }] }) { position } }`,
  },
  {
    code: "INVALID_STATE",
    who: () => t.admin,
    query: () => `mutation { shipOrder(input: { orderId: "${placedOrderId}" }) { position } }`,
  },
];

describe("every error code, over HTTP and over graphql-ws alike", () => {
  for (const c of CASES)
    it(`${c.code}: ${c.query().slice(0, 60)}`, async () => {
      expect(await overHttp(c.who(), c.query())).toBe(c.code);
      expect(await overWs(c.who(), c.query())).toBe(c.code);
      // Again: graphql-ws parses and validates a text once and remembers the outcome, errors too.
      expect(await overWs(c.who(), c.query())).toBe(c.code);
    });

  it("NOT_SERVED: a mutation sent to an instance that serves queries only", async () => {
    const client = queriesOnly.admin;
    const query = `mutation { shipOrder(input: { orderId: "${placedOrderId}" }) { position } }`;
    expect(await overHttp(client, query)).toBe("NOT_SERVED");
    expect(await overWs(client, query)).toBe("NOT_SERVED");
  });

  it("TRUSTED_DOCUMENT_REQUIRED, PERSISTED_QUERY_NOT_FOUND and BAD_REQUEST: documents where only trusted ones run", async () => {
    const customer = trustedOnly.customer("err-buyer");
    const text = "{ products(first: 1) { totalCount } }";
    expect(await overHttp(customer, text)).toBe("TRUSTED_DOCUMENT_REQUIRED");
    expect(await overWs(customer, text)).toBe("TRUSTED_DOCUMENT_REQUIRED");
    const unknown = { documentId: `sha256:${"0".repeat(64)}` };
    expect(await overHttp(customer, unknown)).toBe("PERSISTED_QUERY_NOT_FOUND");
    expect(await overWs(customer, unknown)).toBe("PERSISTED_QUERY_NOT_FOUND");
    const mismatch = { ...documentOf(ProductsDocument), query: text } as { documentId: string; query: string };
    expect(await overHttp(customer, mismatch)).toBe("BAD_REQUEST");
    expect(await overWs(customer, mismatch)).toBe("BAD_REQUEST");
  });
});
