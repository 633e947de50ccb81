import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { acceptsEncoding } from "../../src/http/encoding";
import { serveStorefront, STOREFRONT_DIR } from "../../src/http/storefront";

// The storefront as `npm install` builds it (dist/storefront), served as the API serves it.
let server: http.Server;
let base: string;
let script: string; // the page's own script, /assets/storefront-<hash>.js
beforeAll(async () => {
  server = http.createServer((req, res) => {
    void serveStorefront(STOREFRONT_DIR, req, res).then((served) => {
      if (!served) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  script = /src="(\/assets\/storefront-[^"]+\.js)"/.exec(readFileSync(join(STOREFRONT_DIR, "index.html"), "utf8"))![1]!;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A raw GET (no client decoding), its headers and the bytes as sent. */
function get(path: string, acceptEncoding?: string, method = "GET", extra: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      { method, headers: { ...(acceptEncoding === undefined ? {} : { "accept-encoding": acceptEncoding }), ...extra } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("the storefront's files", () => {
  it("are built with a brotli and a gzip form beside each, the same bytes once decoded, and smaller", () => {
    const file = join(STOREFRONT_DIR, script);
    const original = readFileSync(file);
    const br = readFileSync(`${file}.br`);
    const gz = readFileSync(`${file}.gz`);
    expect(brotliDecompressSync(br).equals(original)).toBe(true);
    expect(gunzipSync(gz).equals(original)).toBe(true);
    expect(br.length).toBeLessThan(original.length / 3);
    expect(gz.length).toBeLessThan(original.length / 3);
  });

  it("go as brotli to a browser that accepts it, else gzip, else as they are; each says it varies so", async () => {
    const plain = await get(script);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers.vary).toBe("accept-encoding");
    expect(Number(plain.headers["content-length"])).toBe(plain.body.length);

    const br = await get(script, "gzip, deflate, br, zstd"); // what Chromium sends
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers.vary).toBe("accept-encoding");
    expect(Number(br.headers["content-length"])).toBe(br.body.length);
    expect(br.body.length).toBeLessThan(plain.body.length / 3);
    expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true);

    const gz = await get(script, "gzip, deflate");
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);

    expect((await get(script, "br;q=0, gzip;q=0")).headers["content-encoding"]).toBeUndefined();
    expect((await get(script, "*")).headers["content-encoding"]).toBe("br");
    expect((await get(script, "*, br;q=0")).headers["content-encoding"]).toBe("gzip");
    expect((await get(script, "identity")).headers["content-encoding"]).toBeUndefined();

    // The page itself too, with its headers; HEAD says what GET would send, without it.
    const page = await get("/", "br");
    expect(page.headers["content-encoding"]).toBe("br");
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(brotliDecompressSync(page.body).toString()).toContain(script);
    const head = await get(script, "gzip", "HEAD");
    expect(head.headers["content-encoding"]).toBe("gzip");
    expect(Number(head.headers["content-length"])).toBe(gz.body.length);
    expect(head.body.length).toBe(0);
  });

  it("have an ETag for each coding: a revalidated page that did not change is a 304 without a body", async () => {
    const page = await get("/", "br");
    const plain = await get("/");
    expect(plain.headers.etag).toMatch(/^".+"$/);
    expect(page.headers.etag).toBe(`${plain.headers.etag!.slice(0, -1)}-br"`);
    const unchanged = await get("/", "br", "GET", { "if-none-match": page.headers.etag! });
    expect(unchanged.status).toBe(304);
    expect(unchanged.body.length).toBe(0);
    expect(unchanged.headers.etag).toBe(page.headers.etag);
    expect(unchanged.headers["cache-control"]).toBe("no-cache");
    // Compared weakly, as If-None-Match is: a proxy that re-encodes sends our tag back as W/"…".
    const weak = await get("/", "br", "GET", { "if-none-match": `"other", W/${page.headers.etag!}` });
    expect(weak.status).toBe(304);
    // The tag of another coding does not stand for this one.
    const other = await get("/", "br", "GET", { "if-none-match": plain.headers.etag! });
    expect(other.status).toBe(200);
    expect(brotliDecompressSync(other.body).equals(readFileSync(join(STOREFRONT_DIR, "index.html")))).toBe(true);
  });

  it("are not found (404, no server error) at a path with a malformed escape or outside the build", async () => {
    for (const path of ["/assets/%E0%A4%A", "/assets/..%2f..%2fpackage.json", "/assets/%2e%2e/%2e%2e/package.json"]) {
      const answer = await get(path, "br");
      expect(answer.status, path).toBe(404);
    }
  });

  it("read Accept-Encoding as RFC 9110 says: q=0 refuses, * covers the unlisted, no header accepts none", () => {
    expect(acceptsEncoding("gzip, deflate, br", "br")).toBe(true);
    expect(acceptsEncoding("GZIP;Q=0.5", "gzip")).toBe(true);
    expect(acceptsEncoding("br;q=0", "br")).toBe(false);
    expect(acceptsEncoding("br ; q=0.0 , gzip", "br")).toBe(false);
    expect(acceptsEncoding("*;q=0.1", "br")).toBe(true);
    expect(acceptsEncoding("*, gzip;q=0", "gzip")).toBe(false);
    expect(acceptsEncoding("identity", "gzip")).toBe(false);
    expect(acceptsEncoding("", "gzip")).toBe(false);
    expect(acceptsEncoding(undefined, "br")).toBe(false);
  });
});
