import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HttpGraphQL } from "../bench/lib/http";
import { node22 } from "../bench/lib/node22";
import { checkSameAnswers } from "../bench/lib/peers";

// The bench's peer comparison refuses to time two servers that do not answer the same, and
// refuses a "Node 22" that is not one.

const ID = "6f0c6a1e-1d5e-4c59-9a0e-3b1f0a2b7c11";
const product = { sku: "BENCH-000001", name: "Red Widget 1", priceCents: 137 };

/** A GraphQL endpoint answering every request with one product, in our shape or PostGraphile's. */
async function endpoint(shape: "ours" | "theirs", available: number): Promise<{ server: Server; gql: HttpGraphQL }> {
  const node =
    shape === "ours"
      ? { id: ID, ...product, available, inStock: available > 0 }
      : { rowId: ID, ...product, inventoryByProductId: { available, inStock: available > 0 } };
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => {
      const { query } = JSON.parse(text) as { query: string };
      const connection = { edges: [{ node }], pageInfo: { hasNextPage: true, endCursor: "c" } };
      const data = query.includes("PeerProduct")
        ? { [shape === "ours" ? "product" : "productByRowId"]: node }
        : { [shape === "ours" ? "products" : "allProducts"]: connection };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { server, gql: new HttpGraphQL(`http://127.0.0.1:${port}`, 4) };
}

const opened: { server: Server; gql: HttpGraphQL }[] = [];
afterEach(async () => {
  for (const { server, gql } of opened.splice(0)) {
    gql.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe("the bench's peer comparison", () => {
  it("goes on when both servers answer the same rows", async () => {
    const [ours, theirs] = [await endpoint("ours", 5), await endpoint("theirs", 5)];
    opened.push(ours, theirs);
    await expect(checkSameAnswers(ours.gql, theirs.gql, [ID])).resolves.toBeUndefined();
  });

  it("stops, naming the query and both answers, when a field differs", async () => {
    const [ours, theirs] = [await endpoint("ours", 5), await endpoint("theirs", 0)];
    opened.push(ours, theirs);
    await expect(checkSameAnswers(ours.gql, theirs.gql, [ID])).rejects.toThrow(
      /ours and PostGraphile disagree on page #0[\s\S]*"available":5[\s\S]*"available":0/,
    );
  });

  it("refuses a BENCH_NODE22 that is not Node 22 or later", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bench-node22-"));
    const fake = path.join(dir, "node");
    writeFileSync(fake, "#!/bin/sh\necho v20.11.0\n");
    chmodSync(fake, 0o755);
    const before = process.env.BENCH_NODE22;
    process.env.BENCH_NODE22 = fake;
    try {
      await expect(node22()).rejects.toThrow(/is v20\.11\.0, not Node 22 or later/);
    } finally {
      if (before === undefined) delete process.env.BENCH_NODE22;
      else process.env.BENCH_NODE22 = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
