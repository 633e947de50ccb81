import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import http from "node:http";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { setupFile, startTestApp, type TestApp } from "../support/app";
import { CreateProductDocument, ProductDocument, ProductsDocument } from "../../src/storefront/generated/graphql";

// RESPONSE_COMPRESSION_MIN_BYTES (README, "Configuration"; off by default): a GraphQL answer over
// HTTP of at least that size goes compressed to a client that accepts it, brotli before gzip, and says it
// varies with Accept-Encoding; a smaller one goes as it is. Read here as the bytes on the wire.

const idOf = (document: object) => (document as { __meta__: { hash: string } }).__meta__.hash;

let t: Awaited<ReturnType<typeof setupFile>>;
let never: TestApp; // RESPONSE_COMPRESSION_MIN_BYTES=0, the default
let productId: string;
beforeAll(async () => {
  t = await setupFile({ catalogCacheSeconds: 5, responseCompressionMinBytes: 1024 });
  never = await startTestApp(t.db, { responseCompressionMinBytes: 0, runProjector: false });
  const sku = `ZIP-${randomUUID().slice(0, 8)}`;
  for (let i = 0; i < 25; i++) {
    const { createProduct } = await t.admin.ok(CreateProductDocument, {
      input: { sku: `${sku}-${i}`, name: `Zipped kettle ${i}`, priceCents: 2500 + i, initialStock: 4 },
    });
    productId = createProduct.product!.id;
  }
});
afterAll(async () => {
  await never?.stop();
  await t?.teardown();
});

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: Buffer;
  /** The body decoded as its Content-Encoding says. */
  text: string;
}

/** One request, its answer as the bytes sent (no client that decodes on its own). */
function request(url: string, headers: Record<string, string>, body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: body === undefined ? "GET" : "POST", headers: { "content-type": "application/json", ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const bytes = Buffer.concat(chunks);
          const encoding = res.headers["content-encoding"];
          const decoded =
            encoding === "br" ? brotliDecompressSync(bytes) : encoding === "gzip" ? gunzipSync(bytes) : bytes;
          resolve({ status: res.statusCode!, headers: res.headers, bytes, text: decoded.toString() });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const page = JSON.stringify({ documentId: idOf(ProductsDocument), variables: { first: 20 } });
const post = (url: string, acceptEncoding: string | undefined, body = page) =>
  request(`${url}/graphql`, acceptEncoding === undefined ? {} : { "accept-encoding": acceptEncoding }, body);

describe("GraphQL answers over HTTP", () => {
  it("of 1 KB or more go as brotli, else gzip, to a client that accepts it: the same JSON, 3x smaller", async () => {
    const plain = await post(t.url, undefined);
    expect(plain.status).toBe(200);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers.vary).toMatch(/accept-encoding/i);
    const answer = JSON.parse(plain.text) as { data: { products: { edges: unknown[] } } };
    expect(answer.data.products.edges).toHaveLength(20);
    expect(plain.bytes.length).toBeGreaterThan(1024);

    const br = await post(t.url, "gzip, deflate, br, zstd");
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers.vary).toMatch(/accept-encoding/i);
    expect(Number(br.headers["content-length"])).toBe(br.bytes.length);
    expect(br.bytes.length).toBeLessThan(plain.bytes.length / 3);
    expect(JSON.parse(br.text)).toEqual(answer);

    const gzip = await post(t.url, "gzip");
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(gzip.text)).toEqual(answer);

    const refused = await post(t.url, "br;q=0, gzip;q=0");
    expect(refused.headers["content-encoding"]).toBeUndefined();
    expect(JSON.parse(refused.text)).toEqual(answer);
  });

  it("smaller than that go as they are, and do not vary", async () => {
    const small = await post(
      t.url,
      "br, gzip",
      JSON.stringify({ documentId: idOf(ProductDocument), variables: { id: productId } }),
    );
    expect(small.status).toBe(200);
    expect(small.headers["content-encoding"]).toBeUndefined();
    expect(small.headers.vary ?? "").not.toMatch(/accept-encoding/i);
    expect((JSON.parse(small.text) as { data: { product: { id: string } } }).data.product.id).toBe(productId);
  });

  it("are measured in bytes: an answer of fewer characters than that, but as many bytes in UTF-8, goes compressed", async () => {
    const { createProduct } = await t.admin.ok(CreateProductDocument, {
      input: {
        sku: `ZIP-${randomUUID().slice(0, 8)}`,
        name: "🫖".repeat(190),
        description: "€".repeat(150),
        priceCents: 100,
        initialStock: 1,
      },
    });
    const body = JSON.stringify({ documentId: idOf(ProductDocument), variables: { id: createProduct.product!.id } });
    const plain = await post(t.url, undefined, body);
    expect(plain.text.length).toBeLessThan(1024);
    expect(plain.bytes.length).toBeGreaterThanOrEqual(1024);
    const br = await post(t.url, "br", body);
    expect(br.headers["content-encoding"]).toBe("br");
    expect(JSON.parse(br.text)).toEqual(JSON.parse(plain.text));
  });

  it("never go compressed with RESPONSE_COMPRESSION_MIN_BYTES=0 (the default)", async () => {
    const answer = await post(never.url, "br, gzip");
    expect(answer.headers["content-encoding"]).toBeUndefined();
    expect(answer.headers.vary ?? "").not.toMatch(/accept-encoding/i);
    expect((JSON.parse(answer.text) as { data: { products: { edges: unknown[] } } }).data.products.edges).toHaveLength(
      20,
    );
  });

  it("that a CDN may keep have a tag for each coding: 304 for the tag of the coding asked for", async () => {
    const url = `${t.url}/graphql?${new URLSearchParams({ documentId: idOf(ProductsDocument), variables: JSON.stringify({ first: 20 }) })}`;
    const br = await request(url, { "accept-encoding": "br" });
    const plain = await request(url, {});
    expect(br.headers["cache-control"]).toBe("public, max-age=5");
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers.vary).toMatch(/accept-encoding/i);
    expect(JSON.parse(br.text)).toEqual(JSON.parse(plain.text));
    const brTag = br.headers.etag!;
    const plainTag = plain.headers.etag!;
    expect(plainTag).toMatch(/^".+"$/);
    expect(brTag).toBe(`${plainTag.slice(0, -1)}-br"`); // the same answer, coded

    expect((await request(url, { "accept-encoding": "br", "if-none-match": brTag })).status).toBe(304);
    expect((await request(url, { "if-none-match": plainTag })).status).toBe(304);
    // The identity's tag does not stand for the brotli answer: the client gets the answer.
    const other = await request(url, { "accept-encoding": "br", "if-none-match": plainTag });
    expect(other.status).toBe(200);
    expect(other.headers.etag).toBe(brTag);
  });
});
