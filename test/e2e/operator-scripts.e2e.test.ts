import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProductsDocument, ProjectionsDocument } from "../../src/storefront/generated/graphql";
import { GraphQLClient, token } from "../support/client";
import { startTestApp } from "../support/app";
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

  it("runs verify, a rebuild and a retry on the database itself, beside a server that has no operator commands", async () => {
    const app = await startTestApp(db);
    try {
      const res = await fetch(`${app.url}/operator/verify`, {
        method: "POST",
        headers: { authorization: `Bearer ${token("admin", "ops")}` },
        body: "{}",
      });
      expect(res.status).toBe(404);
      const env = { DATABASE_URL: db.url };
      const rebuild = await runScript("scripts/projections.ts", ["rebuild", "catalog"], env);
      expect(rebuild.code, rebuild.stderr).toBe(0);
      expect(rebuild.stdout).toMatch(new RegExp(`^rebuilt catalog: ${DEMO_PRODUCTS} events in`, "m"));
      const retry = await runScript("scripts/projections.ts", ["retry", "catalog"], env);
      expect(retry.stdout.trim()).toBe("catalog was not FAILED; nothing to do");
      const verify = await runScript("scripts/verify.ts", [], env);
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toMatch(/^verify: OK/m);
    } finally {
      await app.stop();
    }
  }, 90_000); // three scripts, each a process of its own
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

  // Each script is a process of its own (tsx): seconds apiece on a loaded machine.
  const env = () => ({ DATA_DIR: join(dir, "pglite"), PORT: String(server.port) });

  it("answers `projections status` through that server's API, and refuses an unknown projection before asking it", async () => {
    const status = await runScript("scripts/projections.ts", ["status"], env());
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/'catalog'.*'RUNNING'/);
    expect(status.stdout).toMatch(/'orders'.*'RUNNING'/);

    const unknown = await runScript("scripts/projections.ts", ["rebuild", "nope"], env());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe('unknown projection "nope"; known: catalog, orders');
  });

  it("has that server rebuild the projections, the catalog whole after the swap and the leaders named as before", async () => {
    const admin = new GraphQLClient(server.url).as(token("admin", "ops"));
    const leaders = async () => (await admin.ok(ProjectionsDocument, {})).projections.map((p) => [p.name, p.leader]);
    const before = await leaders();
    const rebuild = await runScript("scripts/projections.ts", ["rebuild", "--all"], env());
    expect(rebuild.code, rebuild.stderr).toBe(0);
    expect(rebuild.stdout).toMatch(/^rebuilt catalog, orders: \d+ events in [\d.]+ s/m);
    const { products } = await new GraphQLClient(server.url).ok(ProductsDocument, { first: 100 });
    expect(products.totalCount).toBe(DEMO_PRODUCTS);
    // One backend: a session's application_name is every session's. The server rebuilds as itself.
    expect(await leaders()).toEqual(before);
  });

  it("has that server run a retry and verify, and exits as the scripts do on the database itself", async () => {
    const retry = await runScript("scripts/projections.ts", ["retry", "orders"], env());
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout.trim()).toBe("orders was not FAILED; nothing to do");

    const verify = await runScript("scripts/verify.ts", [], env());
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(
      new RegExp(`^verify: OK \\(${DEMO_PRODUCTS} products, 0 orders, \\d+ events\\)`, "m"),
    );
  });

  it("runs an operator command for an admin only, and refuses a malformed one with its code", async () => {
    const post = (command: string, body: unknown, authorization?: string) =>
      fetch(`${server.url}/operator/${command}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
        body: JSON.stringify(body),
      }).then(async (res) => ({
        status: res.status,
        code: ((await res.json()) as { errors?: { extensions: { code: string } }[] }).errors?.[0]?.extensions.code,
      }));
    const admin = `Bearer ${token("admin", "ops")}`;
    expect(await post("retry", { projection: "orders" })).toEqual({ status: 401, code: "UNAUTHENTICATED" });
    expect(await post("retry", { projection: "orders" }, `Bearer ${token("customer", "c")}`)).toEqual({
      status: 403,
      code: "FORBIDDEN",
    });
    expect(await post("retry", { projection: "orders" }, "Bearer not-a-token")).toEqual({
      status: 401,
      code: "UNAUTHENTICATED",
    });
    for (const [command, body] of [
      ["rebuild", { projections: "catalog" }],
      ["rebuild", { projections: ["catalog", "nope"] }],
      ["rebuild", { projections: [] }],
      ["retry", {}],
      ["verify", { waitSeconds: -1 }],
      ["verify", "10"],
    ] as const)
      expect(await post(command, body, admin), JSON.stringify(body)).toEqual({ status: 400, code: "BAD_USER_INPUT" });
    expect(await post("verify", { padding: "x".repeat(1_000_001) }, admin)).toEqual({
      status: 413,
      code: "BAD_REQUEST",
    });
    const get = await fetch(`${server.url}/operator/verify`);
    expect(get.status).toBe(405);
    expect((await fetch(`${server.url}/operator/drop`, { method: "POST" })).status).toBe(404);
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
