import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openPostgres } from "../../src/db/postgres";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../../src/db/migrate";
import { ADMIN_URL, databaseUrl } from "../support/globalSetup";

// An empty database (not the migrated template): these tests apply the migrations themselves.
const name = `shop_test_f_${process.pid}_mig_${randomUUID().slice(0, 8)}`;
let dir: string;
beforeAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  dir = await mkdtemp(join(tmpdir(), "migrations-"));
});
afterAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("upgrading a database migration by migration", () => {
  it("moves placeOrder's idempotency keys to command_keys, keeping what each key placed", async () => {
    const [first, ...later] = await loadMigrations();
    expect(later.length).toBeGreaterThan(0);
    await cp(join(MIGRATIONS_DIR, first!.name), join(dir, first!.name), { recursive: true });
    const db = openPostgres(databaseUrl(name), 2);
    try {
      expect(await migrate(db, dir)).toEqual([first!.name]);
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
