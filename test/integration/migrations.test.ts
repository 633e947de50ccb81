import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Database } from "../../src/db/database";
import { openPostgres } from "../../src/db/postgres";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../../src/db/migrate";
import { uuidNumber } from "../../src/shared/ids";
import { ADMIN_URL, databaseUrl } from "../support/globalSetup";

// Empty databases (not the migrated template): these tests apply the migrations themselves.
const name = `shop_test_f_${process.pid}_mig_${randomUUID().slice(0, 8)}`;
const writeName = `${name}_w`;
const readName = `${name}_r`;
const keyedName = `${name}_k`;
let dir: string;

async function admin(statement: string) {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  for (const db of [name, writeName, readName, keyedName]) await admin(`CREATE DATABASE "${db}"`);
  dir = await mkdtemp(join(tmpdir(), "migrations-"));
});
afterAll(async () => {
  for (const db of [name, writeName, readName, keyedName]) await admin(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("upgrading a database migration by migration", () => {
  it("moves placeOrder's idempotency keys to command_keys, keeping what each key placed", async () => {
    const [first, ...later] = await loadMigrations();
    expect(later.length).toBeGreaterThan(0);
    await cp(join(MIGRATIONS_DIR, first!.name), join(dir, first!.name), { recursive: true });
    const db = openPostgres(databaseUrl(name), 2);
    try {
      expect(await migrate(db, { dir })).toEqual([first!.name]);
      // an order placed under the first schema: its event and its key, in one transaction
      const orderId = randomUUID();
      const session = await db.openSession();
      await session.exec("BEGIN");
      const [event] = await session.query<{ tx_id: string }>(
        `INSERT INTO "write".events (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
         VALUES ($1, 'order', 1, 'OrderPlaced', '{}', '{}', now()) RETURNING tx_id::text AS tx_id`,
        [orderId],
      );
      await session.query(
        `INSERT INTO "write".idempotency_keys (customer_id, key, request_hash, order_id, created_at) VALUES ('old-customer', 'old-key', 'h', $1, now())`,
        [orderId],
      );
      await session.exec("COMMIT");
      await session.close();

      expect(await migrate(db)).toEqual(later.map((m) => m.name));
      const keys = await db.prisma.$queryRawUnsafe(
        `SELECT actor_id, command, key, request_hash, tx_id::text AS tx_id FROM "write".command_keys`,
      );
      expect(keys).toEqual([
        { actor_id: "old-customer", command: "placeOrder", key: "old-key", request_hash: "h", tx_id: event!.tx_id },
      ]);
      expect(await migrate(db)).toEqual([]);
    } finally {
      await db.close();
    }
  });
});

describe("row_key (the id's number in a read row's position)", () => {
  it("is given to the rows that exist before it, and filled in for a version that inserts rows without it", async () => {
    const ROW_KEY = "20261210000000_read_row_key";
    const all = await loadMigrations();
    const before = all.filter((m) => m.name < ROW_KEY);
    const keyDir = await mkdtemp(join(tmpdir(), "migrations-"));
    const db = openPostgres(databaseUrl(keyedName), 2);
    try {
      for (const m of before) await cp(join(MIGRATIONS_DIR, m.name), join(keyDir, m.name), { recursive: true });
      expect(await migrate(db, { dir: keyDir })).toEqual(before.map((m) => m.name));
      const insertProduct = (id: string) =>
        db.sql.query(
          `INSERT INTO "read".products (id, sku, name, price_cents, available, in_stock, units_sold, created_at, updated_at, applied_tx, applied_pos)
           VALUES ($1::uuid, $1::text, 'Before', 1, 1, true, 0, now(), now(), '1', 1)`,
          [id],
        );
      const insertOrder = (id: string) =>
        db.sql.query(
          `INSERT INTO "read".orders (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version)
           VALUES ($1, 'before', 'PLACED', 1, 1, '[]', now(), now(), 1)`,
          [id],
        );
      const earlier = ["ffffffff-0000-4000-8000-000000000001", randomUUID()];
      for (const id of earlier) {
        await insertProduct(id);
        await insertOrder(id);
      }

      expect(await migrate(db)).toEqual(all.filter((m) => m.name >= ROW_KEY).map((m) => m.name));
      // An instance of the version before, still running: its inserts name no row_key.
      const later = randomUUID();
      await insertProduct(later);
      await insertOrder(later);
      const keys = await db.sql.query<{ id: string; row_key: string }>(
        `SELECT id::text AS id, row_key::text AS row_key FROM "read".products
         UNION ALL SELECT id::text, row_key::text FROM "read".orders ORDER BY 1, 2`,
      );
      const ids = [...earlier, later].sort();
      expect(keys).toEqual(ids.flatMap((id) => [id, id]).map((id) => ({ id, row_key: uuidNumber(id).toString() })));
    } finally {
      await db.close();
      await rm(keyDir, { recursive: true, force: true });
    }
  });
});

describe("a write database and a read database of their own", () => {
  const tables = (db: Database) =>
    db.prisma.$queryRawUnsafe<{ name: string }[]>(
      `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('write', 'read') AND c.relkind IN ('r', 'f', 'i', 'S') ORDER BY 1`,
    );
  const schemas = async (db: Database) =>
    (
      await db.prisma.$queryRawUnsafe<{ nspname: string }[]>(
        `SELECT nspname FROM pg_namespace WHERE nspname IN ('write', 'read') ORDER BY 1`,
      )
    ).map((r) => r.nspname);

  it("gives each database only its own side's tables, functions and extensions, and records every migration in both", async () => {
    const all = (await loadMigrations()).map((m) => m.name);
    const write = openPostgres(databaseUrl(writeName), 2);
    const read = openPostgres(databaseUrl(readName), 2);
    const both = openPostgres(databaseUrl(name), 2);
    try {
      expect(await migrate(write, { side: "write" })).toEqual(all);
      expect(await migrate(read, { side: "read" })).toEqual(all);
      // applied again: nothing to do on either side
      expect(await migrate(write, { side: "write" })).toEqual([]);
      expect(await migrate(read, { side: "read" })).toEqual([]);

      expect(await schemas(write)).toEqual(["write"]);
      expect(await schemas(read)).toEqual(["read"]);
      const writeTables = (await tables(write)).map((t) => t.name);
      const readTables = (await tables(read)).map((t) => t.name);
      expect(writeTables).toEqual(expect.arrayContaining(["write.events", "write.command_keys", "write.orders"]));
      expect(readTables).toEqual(
        expect.arrayContaining([
          "read.products",
          "read.orders",
          "read.projection_checkpoints",
          "read.read_products_search_idx",
        ]),
      );
      // the two sides together are exactly what one database holds with both
      await migrate(both);
      expect([...writeTables, ...readTables].sort()).toEqual((await tables(both)).map((t) => t.name).sort());

      const extensions = async (db: Database) =>
        (await db.prisma.$queryRawUnsafe<{ extname: string }[]>(`SELECT extname FROM pg_extension`)).map(
          (r) => r.extname,
        );
      expect(await extensions(read)).toContain("pg_trgm");
      expect(await extensions(write)).not.toContain("pg_trgm");
      const functions = async (db: Database) =>
        (
          await db.prisma.$queryRawUnsafe<{ name: string }[]>(
            `SELECT n.nspname || '.' || p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname IN ('write', 'read') ORDER BY 1`,
          )
        ).map((r) => r.name);
      expect(await functions(write)).toEqual([
        "write.each",
        "write.events_are_immutable",
        "write.notify_events_appended",
      ]);
      expect(await functions(read)).toEqual([
        "read.advance_checkpoint",
        "read.each",
        "read.fill_row_key",
        "read.row_key",
      ]);

      // The write database later used whole (an instance given DATABASE_URL alone): it gets the
      // read parts it lacks, and is then what one database with both holds.
      expect(await migrate(write)).toEqual(all);
      expect(await migrate(write)).toEqual([]);
      expect(await schemas(write)).toEqual(["read", "write"]);
      expect(await tables(write)).toEqual(await tables(both));
    } finally {
      await Promise.all([write.close(), read.close(), both.close()]);
    }
  });
});
