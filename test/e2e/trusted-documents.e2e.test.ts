import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { setupFile, startTestApp, type TestApp } from "../support/app";
import { token } from "../support/client";
import { MANIFEST_PATH } from "../../src/graphql/trustedDocuments";
import {
  CreateProductDocument,
  MyOrdersDocument,
  ProductDocument,
  ProductsDocument,
  ProjectionsDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// TRUSTED_DOCUMENTS (README, "Trusted documents"): the manifest codegen writes from the
// storefront's documents; `only` refuses any other document from a non-admin, `allow` runs and
// counts them, `off` runs them. A GET of a trusted public catalog query may be kept by a CDN.

const MANIFEST = JSON.parse(readFileSync(MANIFEST_PATH, "utf8")) as Record<string, string>;
const idOf = (document: object) => (document as { __meta__: { hash: string } }).__meta__.hash;
const ARBITRARY = "{ products(first: 1) { totalCount } }";

let t: Awaited<ReturnType<typeof setupFile>>; // TRUSTED_DOCUMENTS=only, as every test app
let allow: TestApp;
let off: TestApp;
let productId: string;
beforeAll(async () => {
  t = await setupFile({ catalogCacheSeconds: 5 });
  allow = await startTestApp(t.db, { trustedDocuments: "allow", runProjector: false });
  off = await startTestApp(t.db, { trustedDocuments: "off", runProjector: false });
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku: `TD-${randomUUID().slice(0, 8)}`, name: "Trusted kettle", priceCents: 2500, initialStock: 4 },
  });
  productId = createProduct.product!.id;
});
afterAll(async () => {
  await allow?.stop();
  await off?.stop();
  await t?.teardown();
});

const post = (url: string, body: unknown, bearer?: string) =>
  fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });

const untrustedCount = async (url: string, outcome: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`shop_untrusted_documents_total{outcome="${outcome}"}`));
  return line ? Number(line.split(" ")[1]) : 0;
};

describe("the manifest", () => {
  it("holds every document of the storefront and the tests, under the SHA-256 of its text", () => {
    const ids = [ProductsDocument, ProductDocument, CreateProductDocument, MyOrdersDocument, ProjectionsDocument].map(
      idOf,
    );
    for (const id of ids) expect(MANIFEST[id]).toBeDefined();
    for (const [id, text] of Object.entries(MANIFEST))
      expect(id).toBe(`sha256:${createHash("sha256").update(text).digest("hex")}`);
  });
});

describe("TRUSTED_DOCUMENTS=only", () => {
  it("runs a document named by its documentId, or by Apollo's persisted-query extension", async () => {
    const byId = await t.anonymous.request(ProductDocument, { id: productId });
    expect(byId.data?.product?.name).toBe("Trusted kettle");
    const apq = await post(t.url, {
      extensions: { persistedQuery: { version: 1, sha256Hash: idOf(ProductDocument).slice("sha256:".length) } },
      variables: { id: productId },
    });
    expect(((await apq.json()) as { data: { product: { name: string } } }).data.product.name).toBe("Trusted kettle");
  });

  it("runs the text of a trusted document as it is in the manifest", async () => {
    const res = await post(t.url, { query: MANIFEST[idOf(ProductDocument)], variables: { id: productId } });
    expect(res.status).toBe(200);
  });

  it("refuses any other document from a customer or anonymous, with TRUSTED_DOCUMENT_REQUIRED, and counts it", async () => {
    const before = await untrustedCount(t.url, "refused");
    for (const client of [t.anonymous, t.customer("td-customer")]) {
      const res = await client.raw(JSON.stringify({ query: ARBITRARY }));
      expect(res.status).toBe(400);
      expect(res.errors?.[0]?.extensions?.code).toBe("TRUSTED_DOCUMENT_REQUIRED");
      expect(res.data ?? null).toBeNull();
    }
    // A mutation as text writes nothing: the document never runs.
    const events = async () => (await t.db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM "write".events`))[0]!.n;
    const written = await events();
    const mutation = await t.customer("td-customer").raw(
      JSON.stringify({
        query: `mutation { placeOrder(input: { idempotencyKey: "td-1", lines: [{ productId: "${productId}", quantity: 1 }] }) { position } }`,
      }),
    );
    expect(mutation.errors?.[0]?.extensions?.code).toBe("TRUSTED_DOCUMENT_REQUIRED");
    expect(await events()).toBe(written);
    expect(await untrustedCount(t.url, "refused")).toBe(before + 3);
  });

  it("answers an unknown id with PERSISTED_QUERY_NOT_FOUND, and an id sent with another text with BAD_REQUEST", async () => {
    const unknown = await t.anonymous.raw(JSON.stringify({ documentId: `sha256:${"a".repeat(64)}` }));
    expect(unknown.errors?.[0]?.extensions?.code).toBe("PERSISTED_QUERY_NOT_FOUND");
    const mismatch = await t.anonymous.raw(JSON.stringify({ documentId: idOf(ProductsDocument), query: ARBITRARY }));
    expect(mismatch.errors?.[0]?.extensions?.code).toBe("BAD_REQUEST");
    const notAString = await t.anonymous.raw(JSON.stringify({ documentId: 42 }));
    expect(notAString.errors?.[0]?.extensions?.code).toBe("BAD_REQUEST");
  });

  it("still runs an admin's own documents: the projections query, and anything else", async () => {
    const projections = await t.admin.raw(JSON.stringify({ query: "{ projections { name status } }" }));
    expect(projections.errors).toBeUndefined();
    expect(projections.data).toMatchObject({
      projections: expect.arrayContaining([{ name: "catalog", status: "RUNNING" }]),
    });
    const own = await t.admin.raw(JSON.stringify({ query: ARBITRARY }));
    expect(own.errors).toBeUndefined();
  });

  it("applies the same rule over graphql-ws", async () => {
    const ws = t.customer("td-ws").ws();
    try {
      const refused = await new Promise<unknown>((resolve) =>
        ws.subscribe(
          { query: `subscription { inventoryChanged { id } }` },
          { next: () => undefined, error: resolve, complete: () => resolve(undefined) },
        ),
      );
      expect((refused as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe("TRUSTED_DOCUMENT_REQUIRED");
    } finally {
      await ws.dispose();
    }
  });
});

describe("TRUSTED_DOCUMENTS=allow and off", () => {
  it("allow runs a customer's own document and counts it; off runs it without counting", async () => {
    const before = await untrustedCount(allow.url, "accepted");
    const res = await allow.customer("td-allow").raw(JSON.stringify({ query: ARBITRARY }));
    expect(res.errors).toBeUndefined();
    expect(await untrustedCount(allow.url, "accepted")).toBe(before + 1);
    const known = await allow.anonymous.request(ProductDocument, { id: productId });
    expect(known.data?.product?.id).toBe(productId);

    const plain = await off.customer("td-off").raw(JSON.stringify({ query: ARBITRARY }));
    expect(plain.errors).toBeUndefined();
    expect(await untrustedCount(off.url, "accepted")).toBe(0);
    const byId = await off.anonymous.request(ProductDocument, { id: productId });
    expect(byId.data?.product?.id).toBe(productId); // ids resolve in every mode
  });
});

describe("a GET of a trusted public catalog query", () => {
  const getUrl = (url: string, document: object, variables: unknown) =>
    `${url}/graphql?${new URLSearchParams({ documentId: idOf(document), variables: JSON.stringify(variables) })}`;

  it("is public for a short while, with an ETag: 304 while unchanged, a new ETag once the product changes", async () => {
    const url = getUrl(t.url, ProductDocument, { id: productId });
    const first = await fetch(url); // no preflight header: a trusted catalog read has nothing for CSRF to abuse
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("public, max-age=5");
    const etag = first.headers.get("etag");
    expect(etag).toMatch(/^".+"$/);
    expect(((await first.json()) as { data: { product: { available: number } } }).data.product.available).toBe(4);

    const again = await fetch(url, { headers: { "if-none-match": etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");

    await t.admin.ok(RestockProductDocument, { input: { productId, quantity: 1 } });
    const changed = await fetch(url, { headers: { "if-none-match": etag! } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(etag);
  });

  it("is not stored when it carries a token, names no trusted document, is not of the catalog, or fails", async () => {
    const withToken = await fetch(getUrl(t.url, ProductsDocument, { first: 2 }), {
      headers: { authorization: `Bearer ${token("customer", "td-get")}` },
    });
    expect(withToken.headers.get("cache-control")).toBe("no-store");

    const text = await fetch(`${off.url}/graphql?${new URLSearchParams({ query: ARBITRARY })}`, {
      headers: { "apollo-require-preflight": "true" },
    });
    expect(text.status).toBe(200);
    expect(text.headers.get("cache-control")).toBe("no-store");
    // Apollo's CSRF prevention still refuses a GET of a document without a preflight header.
    const simple = await fetch(`${off.url}/graphql?${new URLSearchParams({ query: ARBITRARY })}`);
    expect(simple.status).toBe(400);

    const mine = await fetch(getUrl(t.url, MyOrdersDocument, { first: 1 }), {
      headers: { "apollo-require-preflight": "true" },
    });
    expect(mine.headers.get("cache-control")).toBe("no-store"); // UNAUTHENTICATED, and never public anyway

    const bad = await fetch(getUrl(t.url, ProductDocument, { id: "not-a-uuid" }));
    expect(bad.headers.get("cache-control")).toBe("no-store");
    expect(bad.headers.get("etag")).toBeNull();
  });

  it("is refused as text from anonymous where only trusted documents run", async () => {
    const res = await fetch(`${t.url}/graphql?${new URLSearchParams({ query: ARBITRARY })}`, {
      headers: { "apollo-require-preflight": "true" },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ errors: [{ extensions: { code: "TRUSTED_DOCUMENT_REQUIRED" } }] });
  });
});
