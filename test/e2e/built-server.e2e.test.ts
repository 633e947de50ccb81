import { readFile } from "node:fs/promises";
import { buildClientSchema, buildSchema, getIntrospectionQuery, lexicographicSortSchema, printSchema } from "graphql";
import type { IntrospectionQuery } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA_FILE } from "../../src/graphql/schema";
import { freshDatabase, type TestDatabase } from "../support/db";
import { freePort } from "../support/ports";
import { ServerProcess, startFailure } from "../reliability/serverProcess";
import { GraphQLClient, token } from "../support/client";
import { CreateProductDocument, ProductsDocument, ProjectionsDocument } from "../../src/storefront/generated/graphql";

// `npm start` runs dist/server/main.mjs, src/main.ts bundled by esbuild (scripts/build-server.ts),
// and so do the tests that start the API as a process. The other tests run the TypeScript
// itself; this one checks what only the bundle could get wrong.

let db: TestDatabase;
let server: ServerProcess;

beforeAll(async () => {
  db = await freshDatabase({ empty: true });
  // Introspection is a document of no trusted set: allowed here, as in development.
  server = new ServerProcess(db.url, await freePort(), { TRUSTED_DOCUMENTS: "off" });
  await server.start(); // migrates its empty database: the migrations were found from the bundle
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe("the built server (npm start)", () => {
  it("serves exactly schema.graphql: every type keeps its name in the bundle", async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: getIntrospectionQuery() }),
    });
    const { data, errors } = (await res.json()) as { data?: IntrospectionQuery; errors?: unknown[] };
    expect(errors).toBeUndefined();
    const served = printSchema(lexicographicSortSchema(buildClientSchema(data!)));
    const committed = printSchema(lexicographicSortSchema(buildSchema(await readFile(SCHEMA_FILE, "utf8"))));
    expect(served).toBe(committed);
  });

  it("writes, projects on its worker thread and reads back, and serves the storefront's page", async () => {
    const admin = new GraphQLClient(server.url).as(token("admin", "ops"));
    const { createProduct } = await admin.ok(CreateProductDocument, {
      input: { sku: "BUILT-1", name: "Built tea", priceCents: 450, initialStock: 10 },
    });
    expect(createProduct.product).toMatchObject({ sku: "BUILT-1", available: 10 });
    const { products } = await admin.ok(ProductsDocument, { filter: { search: "built" } });
    expect(products.totalCount).toBe(1);
    const { projections } = await admin.ok(ProjectionsDocument, {});
    expect(projections.map((p) => [p.name, p.status])).toEqual(
      expect.arrayContaining([
        ["catalog", "RUNNING"],
        ["orders", "RUNNING"],
      ]),
    );

    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
  });

  it("started on a port that is taken, says only that, exits 1 and leaves the running server alone", async () => {
    const run = await startFailure({ DATABASE_URL: db.url, PORT: String(server.port) });
    expect(run).toEqual({
      code: 1,
      stderr: `port ${server.port} is in use: stop what listens on it, or start with another PORT`,
    });
    // The first server is untouched, and still leads its projections.
    const admin = new GraphQLClient(server.url).as(token("admin", "ops"));
    const { projections } = await admin.ok(ProjectionsDocument, {});
    expect(projections.every((p) => p.status === "RUNNING")).toBe(true);
  });
});

describe("a start-up that cannot reach its database says why in one line, and exits 1", () => {
  const url = (port: number, name: string) => `postgresql://postgres@127.0.0.1:${port}/${name}`;

  it("nothing listening where DATABASE_URL points", async () => {
    const port = await freePort();
    expect(await startFailure({ DATABASE_URL: url(port, "shop"), PORT: String(await freePort()) })).toEqual({
      code: 1,
      stderr: `no database answers at 127.0.0.1:${port} (ECONNREFUSED): start Postgres there, or fix DATABASE_URL / READ_DATABASE_URL`,
    });
  });

  it("a database that does not exist", async () => {
    const { port } = new URL(db.url);
    expect(
      await startFailure({ DATABASE_URL: url(Number(port), "no_such_shop"), PORT: String(await freePort()) }),
    ).toEqual({
      code: 1,
      stderr: `database "no_such_shop" does not exist: fix DATABASE_URL / READ_DATABASE_URL`,
    });
  });
});
