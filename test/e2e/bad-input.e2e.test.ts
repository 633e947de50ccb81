import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import http from "node:http";
import { print } from "graphql";
import jwt from "jsonwebtoken";
import { setupFile } from "../support/app";
import { TEST_JWT_SECRET, token, type GqlResponse } from "../support/client";
import {
  CancelOrderDocument,
  CreateProductDocument,
  OrderDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  RestockProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";

/*
 * Every rejected request answers with its contract code and leaves the write model exactly as
 * it was: no product, stock, order, line, idempotency key or event is written.
 */

let t: Awaited<ReturnType<typeof setupFile>>;
let product: { id: string; sku: string };
let placedOrderId: string;
let cancelledOrderId: string;

/** The stream (product or order) of the event at a log position: setup reads the write model, not the eventually consistent read side. */
async function streamAt(position: string): Promise<string> {
  const [row] = await t.db.sql<{ stream_id: string }>(`SELECT stream_id FROM "write".events WHERE position = $1`, [
    position,
  ]);
  return row!.stream_id;
}

async function createProduct(sku: string, initialStock: number) {
  const created = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 2999, initialStock },
  });
  return { id: await streamAt(created.createProduct.position), sku };
}

beforeAll(async () => {
  t = await setupFile({ trustedDocuments: "off" }); // documents of its own, as any client may send without trusted documents
  product = await createProduct("BAD-INPUT-1", 50);
  const placed = await t
    .customer("alice")
    .ok(PlaceOrderDocument, { input: { idempotencyKey: "setup-1", lines: [{ productId: product.id, quantity: 1 }] } });
  placedOrderId = await streamAt(placed.placeOrder.position);
  const toCancel = await t
    .customer("alice")
    .ok(PlaceOrderDocument, { input: { idempotencyKey: "setup-2", lines: [{ productId: product.id, quantity: 1 }] } });
  cancelledOrderId = await streamAt(toCancel.placeOrder.position);
  await t.customer("alice").ok(CancelOrderDocument, { input: { orderId: cancelledOrderId } });
});
afterAll(async () => t?.teardown());

const TABLES = ["products", "inventory", "orders", "order_lines", "command_keys", "events"] as const;

/** Row counts of every write table, plus the stock figures (a rejected order must not reserve). */
async function writeModel() {
  const [counts] = await t.db.sql<Record<(typeof TABLES)[number], string>>(
    `SELECT ${TABLES.map((table) => `(SELECT count(*) FROM "write"."${table}") AS "${table}"`).join(", ")}`,
  );
  const stock = await t.db.sql(
    `SELECT product_id, on_hand, reserved, available FROM "write".inventory ORDER BY product_id`,
  );
  return { counts, stock };
}

/** Runs a request that must be rejected with `code` (and HTTP `status` when given), and checks that it wrote nothing. */
async function expectRejected(send: () => Promise<GqlResponse<unknown>>, code: string, status?: number) {
  const before = await writeModel();
  const res = await send();
  expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res.errors)).toBe(code);
  // No data at all, or (for a nullable field) the field itself null.
  if (res.data) expect(Object.values(res.data as Record<string, unknown>).every((v) => v === null)).toBe(true);
  if (status !== undefined) expect(res.status).toBe(status);
  expect(await writeModel()).toEqual(before);
  return res;
}

const orderOf = (lines: { productId: string; quantity: number }[], idempotencyKey: string = randomUUID()) => ({
  input: { idempotencyKey, lines },
});
const oneKettle = () => orderOf([{ productId: product.id, quantity: 1 }]);
const placeOrderBody = (padding = "") =>
  JSON.stringify({ query: `${print(PlaceOrderDocument)}${padding}`, variables: oneKettle() });

/** A JWT with the given header and claims, signed HS256 with `secret` (or unsigned for alg none). */
function craftToken(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  secret = TEST_JWT_SECRET,
): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${b64(header)}.${b64(claims)}`;
  if (header.alg === "none") return `${unsigned}.`;
  return jwt.sign(claims, secret, {
    algorithm: header.alg as jwt.Algorithm,
    header: header as unknown as jwt.JwtHeader,
    noTimestamp: true,
  });
}
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe("placing an order with bad input", () => {
  it.each([
    ["a quantity of 0", () => orderOf([{ productId: product.id, quantity: 0 }])],
    ["a negative quantity", () => orderOf([{ productId: product.id, quantity: -2 }])],
    ["a quantity over 10,000 on one line", () => orderOf([{ productId: product.id, quantity: 10_001 }])],
    ["no lines", () => orderOf([])],
    ["101 lines", () => orderOf(Array.from({ length: 101 }, () => ({ productId: product.id, quantity: 1 })))],
    ["an empty idempotency key", () => orderOf([{ productId: product.id, quantity: 1 }], "")],
    ["a product id that is not a UUID", () => orderOf([{ productId: "kettle", quantity: 1 }])],
  ])("rejects %s as BAD_USER_INPUT", async (_what, variables) => {
    await expectRejected(() => t.customer("bob").request(PlaceOrderDocument, variables()), "BAD_USER_INPUT");
  });

  it("rejects an order for a product that does not exist as NOT_FOUND, without keeping its idempotency key", async () => {
    await expectRejected(
      () =>
        t.customer("bob").request(
          PlaceOrderDocument,
          orderOf([
            { productId: product.id, quantity: 1 },
            { productId: randomUUID(), quantity: 1 },
          ]),
        ),
      "NOT_FOUND",
    );
  });

  it("rejects more than is in stock as OUT_OF_STOCK, without reserving the lines that would fit", async () => {
    const other = await createProduct("BAD-INPUT-SCARCE", 1);
    await expectRejected(
      () =>
        t.customer("bob").request(
          PlaceOrderDocument,
          orderOf([
            { productId: product.id, quantity: 1 },
            { productId: other.id, quantity: 2 },
          ]),
        ),
      "OUT_OF_STOCK",
    );
  });
});

describe("order commands on orders that do not exist or cannot move", () => {
  const orderCommands = [
    ["cancel", (orderId: string) => t.admin.request(CancelOrderDocument, { input: { orderId } })],
    ["pay", (orderId: string) => t.admin.request(PayOrderDocument, { input: { orderId } })],
    ["ship", (orderId: string) => t.admin.request(ShipOrderDocument, { input: { orderId } })],
  ] as const;

  it.each(orderCommands)("answers NOT_FOUND to an admin's %s of an unknown order", async (_verb, send) => {
    await expectRejected(() => send(randomUUID()), "NOT_FOUND");
  });

  it("answers NOT_FOUND to a customer's cancel of an unknown order", async () => {
    await expectRejected(
      () => t.customer("alice").request(CancelOrderDocument, { input: { orderId: randomUUID() } }),
      "NOT_FOUND",
    );
  });

  it.each(orderCommands)("rejects an order id that is not a UUID on %s as BAD_USER_INPUT", async (_verb, send) => {
    await expectRejected(() => send("order-1"), "BAD_USER_INPUT");
  });

  it("refuses to ship a PLACED order as INVALID_STATE", async () => {
    await expectRejected(
      () => t.admin.request(ShipOrderDocument, { input: { orderId: placedOrderId } }),
      "INVALID_STATE",
    );
  });

  it("refuses to pay a CANCELLED order as INVALID_STATE", async () => {
    await expectRejected(
      () => t.admin.request(PayOrderDocument, { input: { orderId: cancelledOrderId } }),
      "INVALID_STATE",
    );
  });

  it("refuses to cancel a CANCELLED order again as INVALID_STATE", async () => {
    await expectRejected(
      () => t.customer("alice").request(CancelOrderDocument, { input: { orderId: cancelledOrderId } }),
      "INVALID_STATE",
    );
  });
});

describe("catalog commands with bad input", () => {
  it("rejects a second product with the same sku as CONFLICT", async () => {
    await expectRejected(
      () =>
        t.admin.request(CreateProductDocument, {
          input: { sku: product.sku, name: "Another kettle", priceCents: 1, initialStock: 1 },
        }),
      "CONFLICT",
    );
  });

  it.each([
    ["an empty sku", { sku: "", name: "X", priceCents: 1, initialStock: 1 }],
    ["a negative price", { sku: "NEG-PRICE", name: "X", priceCents: -1, initialStock: 1 }],
    ["negative initial stock", { sku: "NEG-STOCK", name: "X", priceCents: 1, initialStock: -1 }],
  ])("rejects a product with %s as BAD_USER_INPUT", async (_what, input) => {
    await expectRejected(() => t.admin.request(CreateProductDocument, { input }), "BAD_USER_INPUT");
  });

  it.each([0, -5])("rejects a restock of %s units as BAD_USER_INPUT", async (quantity) => {
    await expectRejected(
      () => t.admin.request(RestockProductDocument, { input: { productId: product.id, quantity } }),
      "BAD_USER_INPUT",
    );
  });

  it("rejects a restock of a product id that is not a UUID as BAD_USER_INPUT", async () => {
    await expectRejected(
      () => t.admin.request(RestockProductDocument, { input: { productId: "kettle", quantity: 1 } }),
      "BAD_USER_INPUT",
    );
  });

  it("rejects a restock of an unknown product as NOT_FOUND", async () => {
    await expectRejected(
      () => t.admin.request(RestockProductDocument, { input: { productId: randomUUID(), quantity: 1 } }),
      "NOT_FOUND",
    );
  });
});

describe("queries with ids that are not UUIDs", () => {
  it("rejects product(id:) and order(id:) with a non-UUID id as BAD_USER_INPUT", async () => {
    await expectRejected(() => t.anonymous.request(ProductDocument, { id: "kettle" }), "BAD_USER_INPUT");
    await expectRejected(() => t.customer("alice").request(OrderDocument, { id: "order-1" }), "BAD_USER_INPUT");
  });
});

describe("who may do what", () => {
  it("answers UNAUTHENTICATED to placeOrder without a token", async () => {
    await expectRejected(() => t.anonymous.request(PlaceOrderDocument, oneKettle()), "UNAUTHENTICATED");
  });

  it.each([
    [
      "a tampered signature",
      () => {
        const [h, p, s] = token("customer", "mallory").split(".");
        return `${h}.${p}.${s!.slice(0, -4)}AAAA`;
      },
    ],
    [
      "tampered claims (admin role, customer's signature)",
      () => {
        const [h, , s] = token("customer", "mallory").split(".");
        return `${h}.${Buffer.from(JSON.stringify({ sub: "mallory", role: "admin", exp: inAnHour() })).toString("base64url")}.${s}`;
      },
    ],
    ["garbage", () => "not-a-jwt"],
    [
      "an unsigned token (alg none)",
      () => craftToken({ alg: "none", typ: "JWT" }, { sub: "mallory", role: "admin", exp: inAnHour() }),
    ],
    [
      "a token signed with HS512 instead of HS256",
      () => craftToken({ alg: "HS512", typ: "JWT" }, { sub: "mallory", role: "customer", exp: inAnHour() }),
    ],
    ["a token signed with another secret", () => token("customer", "mallory", "another-secret-0123456789-0123456789")],
    ["a token without sub", () => craftToken({ alg: "HS256", typ: "JWT" }, { role: "customer", exp: inAnHour() })],
    [
      "a token with an unknown role",
      () => craftToken({ alg: "HS256", typ: "JWT" }, { sub: "mallory", role: "root", exp: inAnHour() }),
    ],
    [
      "an expired token",
      () =>
        craftToken(
          { alg: "HS256", typ: "JWT" },
          { sub: "mallory", role: "customer", exp: Math.floor(Date.now() / 1000) - 60 },
        ),
    ],
  ])("answers UNAUTHENTICATED with HTTP 401 to %s", async (_what, makeToken) => {
    await expectRejected(
      () => t.anonymous.as(makeToken()).request(PlaceOrderDocument, oneKettle()),
      "UNAUTHENTICATED",
      401,
    );
  });

  it("answers UNAUTHENTICATED with HTTP 401 to an Authorization header that is not a Bearer token", async () => {
    await expectRejected(
      () =>
        t.anonymous.request(PlaceOrderDocument, oneKettle(), {
          authorization: `Basic ${Buffer.from("a:b").toString("base64")}`,
        }),
      "UNAUTHENTICATED",
      401,
    );
  });

  it("says the token has expired when it has", async () => {
    const expired = craftToken(
      { alg: "HS256", typ: "JWT" },
      { sub: "alice", role: "customer", exp: Math.floor(Date.now() / 1000) - 60 },
    );
    const res = await t.anonymous.as(expired).request(PlaceOrderDocument, oneKettle());
    expect(res.errors?.[0]?.message).toMatch(/expired/);
  });

  it.each([
    [
      "createProduct",
      () =>
        t
          .customer("alice")
          .request(CreateProductDocument, { input: { sku: "BY-CUSTOMER", name: "X", priceCents: 1, initialStock: 1 } }),
    ],
    [
      "restockProduct",
      () => t.customer("alice").request(RestockProductDocument, { input: { productId: product.id, quantity: 5 } }),
    ],
    ["payOrder", () => t.customer("alice").request(PayOrderDocument, { input: { orderId: placedOrderId } })],
    ["shipOrder", () => t.customer("alice").request(ShipOrderDocument, { input: { orderId: placedOrderId } })],
  ])("answers FORBIDDEN to a customer calling %s", async (_what, send) => {
    await expectRejected(send, "FORBIDDEN");
  });

  it("answers FORBIDDEN to an admin placing an order", async () => {
    await expectRejected(() => t.admin.request(PlaceOrderDocument, oneKettle()), "FORBIDDEN");
  });

  it("answers UNAUTHENTICATED to anonymous createProduct", async () => {
    await expectRejected(
      () =>
        t.anonymous.request(CreateProductDocument, {
          input: { sku: "BY-ANON", name: "X", priceCents: 1, initialStock: 1 },
        }),
      "UNAUTHENTICATED",
    );
  });
});

describe("request bodies the server cannot take", () => {
  it("answers a malformed JSON body with HTTP 400 and BAD_REQUEST", async () => {
    const body = placeOrderBody();
    await expectRejected(() => t.customer("bob").raw(body.slice(0, body.length - 5)), "BAD_REQUEST", 400);
  });

  it("answers a body over 1 MB with HTTP 413", async () => {
    const body = placeOrderBody(`\n# ${"x".repeat(1_000_000)}`);
    expect(Buffer.byteLength(body)).toBeGreaterThan(1_000_000);
    await expectRejected(() => t.customer("bob").raw(body), "BAD_REQUEST", 413);
  });

  it("answers a body over 1 MB sent without its length (chunked) with HTTP 413, and closes the connection", async () => {
    const before = await writeModel();
    const chunk = placeOrderBody(`\n# ${"x".repeat(64_000)}`);
    const answer = await new Promise<{ status: number; connection: string | undefined; body: string }>(
      (resolve, reject) => {
        const req = http.request(`${t.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token("customer", "bob")}` },
        });
        req.on("error", reject);
        req.on("response", (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }));
        });
        // Up to 4 MB, a chunk at a time, until the server answers (it stops reading at 1 MB).
        let sent = 0;
        const more = () => {
          while (sent < 4_000_000 && !req.destroyed) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once("drain", more);
          }
        };
        more();
      },
    );
    expect(answer.status).toBe(413);
    expect(answer.connection).toBe("close");
    expect(JSON.parse(answer.body).errors[0].extensions.code).toBe("BAD_REQUEST");
    expect(await writeModel()).toEqual(before);
  });

  it("answers a body that is not valid UTF-8 with HTTP 400", async () => {
    const [head, tail] = placeOrderBody().split(/(?<="idempotencyKey":")/);
    const body = Buffer.concat([Buffer.from(head!), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(tail!)]);
    await expectRejected(() => t.customer("bob").raw(body), "BAD_REQUEST", 400);
  });

  it("still accepts the same order in a body just under 1 MB (the limit is the size, not the content)", async () => {
    const padding = `\n# ${"x".repeat(999_000 - placeOrderBody().length)}`;
    const body = placeOrderBody(padding);
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(1_000_000);
    const res = await t.customer("bob").raw(body);
    expect(res.errors).toBeUndefined();
    expect(res.status).toBe(200);
  });
});
