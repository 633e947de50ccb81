import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProductsDocument } from "../../src/storefront/generated/graphql";
import { GraphQLClient } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { freePort } from "../support/ports";
import { runToExit, ServerProcess, startFailure } from "../reliability/serverProcess";

// The operator scripts as a user runs them: `npm run seed` on a Postgres database, and the seed
// and `npm run projections` on the embedded database while the server that holds it runs (the
// quick start's order: `npm start`, then the seed).

const DEMO_PRODUCTS = 12;

const runScript = (script: string, args: string[], env: Record<string, string>) =>
  runToExit(["--import", "tsx", script, ...args], env);

const runSeed = (env: Record<string, string>) => runScript("scripts/seed.ts", [], env);

describe("seeding a Postgres database", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase({ empty: true });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("migrates it, creates the demo catalog through commands and projects it; a second run skips every product", async () => {
    const first = await runSeed({ DATABASE_URL: db.url });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(
      `${DEMO_PRODUCTS} created, 0 skipped (already there); the catalog lists ${DEMO_PRODUCTS} products.`,
    );
    const [events] = await db.sql(
      `SELECT count(*)::int AS n FROM "write".events WHERE type = 'ProductCreated' AND metadata->>'correlationId' LIKE 'seed-%'`,
    );
    expect(events!.n).toBe(DEMO_PRODUCTS);

    const second = await runSeed({ DATABASE_URL: db.url });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(
      `0 created, ${DEMO_PRODUCTS} skipped (already there); the catalog lists ${DEMO_PRODUCTS} products.`,
    );
    const [after] = await db.sql(`SELECT count(*)::int AS n FROM "write".events`);
    expect(after!.n).toBe(DEMO_PRODUCTS);
  });
});

describe("the embedded database while a server holds it: the seed and `projections status` go through its API", () => {
  let dir: string;
  let server: ServerProcess;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "seed-e2e-"));
    server = new ServerProcess("", await freePort(), { DATA_DIR: join(dir, "pglite") });
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("sends the commands to that server's API, where the catalog shows them; a second run skips every product", async () => {
    const env = { DATA_DIR: join(dir, "pglite"), PORT: String(server.port) };
    const first = await runSeed(env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`seeding through its API at http://127.0.0.1:${server.port}/graphql`);
    expect(first.stdout).toContain(
      `${DEMO_PRODUCTS} created, 0 skipped (already there); the catalog lists ${DEMO_PRODUCTS} products.`,
    );
    expect(first.stdout).toMatch(/KIT-ESP-001 +€34\.99 +40 available +Stovetop Espresso Maker, 6 cup/);

    const { products } = await new GraphQLClient(server.url).ok(ProductsDocument, { first: 100 });
    expect(products.totalCount).toBe(DEMO_PRODUCTS);

    const second = await runSeed(env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(
      `0 created, ${DEMO_PRODUCTS} skipped (already there); the catalog lists ${DEMO_PRODUCTS} products.`,
    );
  });

  it("answers `projections status` through that server's API, and refuses a rebuild, which needs the database itself", async () => {
    const env = { DATA_DIR: join(dir, "pglite"), PORT: String(server.port) };
    const status = await runScript("scripts/projections.ts", ["status"], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/'catalog'.*'RUNNING'/);
    expect(status.stdout).toMatch(/'orders'.*'RUNNING'/);

    const rebuild = await runScript("scripts/projections.ts", ["rebuild", "catalog"], env);
    expect(rebuild.code).toBe(1);
    expect(rebuild.stderr.trim()).toMatch(
      /in use by process \d+; stop it first .*; only `status` can go through its API$/,
    );
  });

  it("is the one process on it: a second server on the same folder says so in one line and exits 1", async () => {
    const run = await startFailure({ DATA_DIR: join(dir, "pglite"), PORT: String(await freePort()) });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^the embedded database in \S+ is in use by process \d+; stop it first \(or set DATA_DIR \/ DATABASE_URL\)$/,
    );
  });

  it("fails with the reason when no API answers at PORT, and leaves the folder to its server", async () => {
    const run = await runSeed({ DATA_DIR: join(dir, "pglite"), PORT: String(await freePort()) });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/in use by process \d+.*No API answers at http:\/\/127\.0\.0\.1:\d+\/graphql/);
    const { products } = await new GraphQLClient(server.url).ok(ProductsDocument, { first: 0 });
    expect(products.totalCount).toBe(DEMO_PRODUCTS);
  });
});
