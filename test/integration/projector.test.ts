import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, Sql } from "../../src/db/database";
import { migrate } from "../../src/db/migrate";
import { openPostgres } from "../../src/db/postgres";
import { createLogger } from "../../src/logger";
import { listCheckpoints, markFailed, markRunning } from "../../src/projection/checkpoints";
import { logSource, type EventSource } from "../../src/projection/logSource";
import { ProjectionWorker } from "../../src/projection/projectionWorker";
import { Projector, type ProjectorOptions } from "../../src/projection/projector";
import { allProjections } from "../../src/projection/projections";
import { catalogProjection } from "../../src/projection/projections/catalog.projection";
import { ordersProjection } from "../../src/projection/projections/orders.projection";
import { comparePositions, LOG_START, type LogPosition } from "../../src/shared/events";
import type { OrderPlaced, ProductCreated, StockAdjusted } from "../../src/events";
import { sql } from "../../src/db/sql";
import { projectBatch } from "../../src/projection/projection";
import { startTestApp, type TestApp } from "../support/app";
import type { GqlResponse } from "../support/client";
import { committedEventsAfter, freshDatabase, whileOpenElsewhere, type TestDatabase } from "../support/db";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProjectionsDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// The projector against a real Postgres. Events are appended with plain SQL here, so a test
// decides exactly which transaction takes which position and when it commits.
// The projector works on its own time, so every "caught up" is awaited.

const CAUGHT_UP = { timeoutMs: 15_000 };

let db: TestDatabase;
let database: Database;
const projectorOptions: ProjectorOptions = {
  batchSize: 100,
  pollMs: 100,
  instanceId: "projector-test",
  logger: createLogger("silent"),
};
let projector: Projector;

beforeAll(async () => {
  db = await freshDatabase();
  database = openPostgres(db.url, 4);
  await migrate(database);
  projector = new Projector(database, allProjections, projectorOptions);
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

// ---------- events, written as a command would, but with SQL ----------

type Run = <T extends pg.QueryResultRow>(text: string, params?: unknown[]) => Promise<T[]>;
const on =
  (client: pg.Client): Run =>
  async (text, params) =>
    (await client.query(text, params)).rows;

interface RawEvent {
  streamId: string;
  streamType: string;
  streamVersion: number;
  type: string;
  data: unknown;
}

const METADATA = JSON.stringify({
  correlationId: "t",
  causationId: null,
  actor: { id: "t", role: "admin" },
  command: "test",
});

async function append(run: Run, e: RawEvent): Promise<LogPosition> {
  const [row] = await run<{ position: string; tx_id: string }>(
    `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, now()) RETURNING position::text AS position, tx_id::text AS tx_id`,
    [e.streamId, e.streamType, e.streamVersion, e.type, JSON.stringify(e.data), METADATA],
  );
  return { txId: BigInt(row!.tx_id), position: BigInt(row!.position) };
}

interface TestProduct {
  id: string;
  sku: string;
  name: string;
  priceCents: number;
}

function newProduct(): TestProduct {
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  return { id: randomUUID(), sku, name: `Product ${sku}`, priceCents: 500 };
}

const productCreated = (p: TestProduct, initialStock: number): RawEvent => ({
  streamId: p.id,
  streamType: "product",
  streamVersion: 1,
  type: "ProductCreated",
  data: {
    productId: p.id,
    sku: p.sku,
    name: p.name,
    description: null,
    priceCents: p.priceCents,
    initialStock,
  } satisfies ProductCreated["data"],
});

const stockAdjusted = (p: TestProduct, streamVersion: number, delta: number): RawEvent => ({
  streamId: p.id,
  streamType: "product",
  streamVersion,
  type: "StockAdjusted",
  data: { productId: p.id, delta, reason: "restock" } satisfies StockAdjusted["data"],
});

function orderPlaced(p: TestProduct, quantity: number): RawEvent {
  const orderId = randomUUID();
  const data: OrderPlaced["data"] = {
    orderId,
    customerId: "buyer",
    totalCents: quantity * p.priceCents,
    itemCount: quantity,
    placedAt: new Date().toISOString(),
    lines: [{ productId: p.id, sku: p.sku, name: p.name, quantity, unitPriceCents: p.priceCents }],
  };
  return { streamId: orderId, streamType: "order", streamVersion: 1, type: "OrderPlaced", data };
}

// ---------- what the read side shows ----------

interface CheckpointRow extends LogPosition {
  status: string;
  lastError: string | null;
  failedPosition: bigint | null;
}

async function checkpoint(name: string): Promise<CheckpointRow> {
  const [row] = await db.sql<{
    tx_id: string;
    position: string;
    status: string;
    last_error: string | null;
    failed_position: string | null;
  }>(
    `SELECT tx_id::text AS tx_id, position::text AS position, status, last_error, failed_position::text AS failed_position
       FROM "read"."projection_checkpoints" WHERE name = $1`,
    [name],
  );
  if (!row) return { ...LOG_START, status: "MISSING", lastError: null, failedPosition: null };
  return {
    txId: BigInt(row.tx_id),
    position: BigInt(row.position),
    status: row.status,
    lastError: row.last_error,
    failedPosition: row.failed_position === null ? null : BigInt(row.failed_position),
  };
}

const at = (p: LogPosition): LogPosition => ({ txId: p.txId, position: p.position });
const later = (a: LogPosition, b: LogPosition) => (comparePositions(a, b) >= 0 ? a : b);

/** The last committed event of the log, in (tx_id, position) order. */
async function endOfLog(): Promise<LogPosition> {
  const [row] = await db.sql<{ tx_id: string; position: string }>(
    // The table's columns (e.), not the text output columns: as text, '9' sorts after '10'.
    `SELECT e.tx_id::text AS tx_id, e.position::text AS position FROM "write"."events" e ORDER BY e.tx_id DESC, e.position DESC LIMIT 1`,
  );
  return row ? { txId: BigInt(row.tx_id), position: BigInt(row.position) } : LOG_START;
}

/** Runs the projector until both projections have applied every committed event. */
async function catchUpWith(p: Projector): Promise<void> {
  const end = await endOfLog();
  await eventually(
    async () => {
      await p.catchUp();
      for (const name of ["catalog", "orders"]) if (comparePositions(await checkpoint(name), end) < 0) return false;
      return true;
    },
    { ...CAUGHT_UP, what: "the projections to reach the end of the log" },
  );
}

interface ReadProduct {
  id: string;
  sku: string;
  available: number;
  units_sold: number;
  in_stock: boolean;
}

async function readProducts(ids: string[]): Promise<ReadProduct[]> {
  return db.sql<ReadProduct>(
    `SELECT id::text AS id, sku, available, units_sold, in_stock FROM "read"."products" WHERE id = ANY($1::uuid[]) ORDER BY id`,
    [ids],
  );
}

async function rawClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

async function withClients(fn: (a: pg.Client, b: pg.Client) => Promise<void>): Promise<void> {
  const a = await rawClient();
  const b = await rawClient();
  try {
    await fn(a, b);
  } finally {
    await a.query("ROLLBACK").catch(() => undefined);
    await b.query("ROLLBACK").catch(() => undefined);
    await Promise.all([a.end(), b.end()]);
  }
}

// ---------- gap safety ----------

describe("projecting events whose transactions commit out of order", () => {
  beforeAll(async () => {
    await catchUpWith(projector);
  });

  it("does not skip an earlier position that commits after a later one", async () => {
    const first = newProduct();
    const second = newProduct();
    await withClients(async (a, b) => {
      const before = await checkpoint("catalog");
      await a.query("BEGIN");
      const early = await append(on(a), productCreated(first, 1));
      await b.query("BEGIN");
      const late = await append(on(b), productCreated(second, 2));
      expect(late.position).toBeGreaterThan(early.position);
      await b.query("COMMIT");

      await projector.catchUp();
      // The later event waits for the older open transaction instead of moving the checkpoint past it.
      expect(await readProducts([first.id, second.id])).toEqual([]);
      expect(at(await checkpoint("catalog"))).toEqual(at(before));
      expect(comparePositions(await checkpoint("catalog"), early)).toBeLessThan(0);

      await a.query("COMMIT");
      const end = later(early, late);
      await eventually(async () => {
        await projector.catchUp();
        return comparePositions(await checkpoint("catalog"), end) === 0;
      }, CAUGHT_UP);
      expect(await readProducts([first.id, second.id])).toEqual(
        [
          { id: first.id, sku: first.sku, available: 1, units_sold: 0, in_stock: true },
          { id: second.id, sku: second.sku, available: 2, units_sold: 0, in_stock: true },
        ].sort((x, y) => x.id.localeCompare(y.id)),
      );
      expect(at(await checkpoint("catalog"))).toEqual(late);
    });
  });

  it("does not skip the event of an older transaction that takes a later position and commits last", async () => {
    const first = newProduct();
    const second = newProduct();
    await withClients(async (a, b) => {
      const before = await checkpoint("catalog");
      await a.query("BEGIN");
      await a.query("SELECT pg_current_xact_id()"); // A's transaction id is older than B's
      await b.query("BEGIN");
      const youngerLowerPosition = await append(on(b), productCreated(second, 2));
      await b.query("COMMIT");

      await projector.catchUp();
      expect(await readProducts([second.id])).toEqual([]);
      expect(at(await checkpoint("catalog"))).toEqual(at(before));

      const olderHigherPosition = await append(on(a), productCreated(first, 1));
      expect(olderHigherPosition.position).toBeGreaterThan(youngerLowerPosition.position);
      expect(olderHigherPosition.txId).toBeLessThan(youngerLowerPosition.txId);
      await a.query("COMMIT");

      // In (tx_id, position) order B's event is the later one, though its position is lower.
      await eventually(async () => {
        await projector.catchUp();
        return comparePositions(await checkpoint("catalog"), youngerLowerPosition) === 0;
      }, CAUGHT_UP);
      expect((await readProducts([first.id, second.id])).map((p) => p.id).sort()).toEqual([first.id, second.id].sort());
      expect(at(await checkpoint("orders"))).toEqual(youngerLowerPosition);
    });
  });

  it("applies an event as soon as every older transaction has finished, while a younger one is still open", async () => {
    const first = newProduct();
    const second = newProduct();
    await withClients(async (a, b) => {
      await a.query("BEGIN");
      const older = await append(on(a), productCreated(first, 1));
      await b.query("BEGIN");
      const younger = await append(on(b), productCreated(second, 2));
      await a.query("COMMIT");

      await eventually(async () => {
        await projector.catchUp();
        return comparePositions(await checkpoint("catalog"), older) === 0;
      }, CAUGHT_UP);
      expect((await readProducts([first.id, second.id])).map((p) => p.id)).toEqual([first.id]);

      await b.query("COMMIT");
      await eventually(async () => {
        await projector.catchUp();
        return comparePositions(await checkpoint("catalog"), younger) === 0;
      }, CAUGHT_UP);
      expect((await readProducts([first.id, second.id])).map((p) => p.id).sort()).toEqual([first.id, second.id].sort());
    });
  });

  it("catches up past a transaction left open in another database of the server, which cannot write this log", async () => {
    const product = newProduct();
    await whileOpenElsewhere(async () => {
      let position = LOG_START;
      await withClients(async (a) => {
        await a.query("BEGIN");
        position = await append(on(a), productCreated(product, 3));
        await a.query("COMMIT");
      });
      // A fresh projector, as a CLI's: it has never looked for other databases' transactions.
      await new Projector(database, allProjections, projectorOptions).catchUp();
      expect(comparePositions(await checkpoint("catalog"), position)).toBeGreaterThanOrEqual(0);
      expect((await readProducts([product.id])).map((p) => p.available)).toEqual([3]);
    });
  });
});

// ---------- exactly once ----------

async function readOrderCount(productId: string): Promise<number> {
  const [row] = await db.sql<{ n: number }>(
    `SELECT count(*)::int AS n FROM "read"."orders" o, jsonb_array_elements(o.lines) l WHERE l->>'productId' = $1`,
    [productId],
  );
  return row!.n;
}

describe("a batch whose checkpoint moved while it was read (an operator, a rebuild's swap)", () => {
  it("is rolled back whole, and applied once the checkpoint is read again", async () => {
    await catchUpWith(projector);
    const product = newProduct();
    await append(db.sql, productCreated(product, 7));
    const worker = new ProjectionWorker(database, catalogProjection, logSource(database), projectorOptions);
    const read = (await listCheckpoints(database.sql)).find((c) => c.name === "catalog")!;
    // Readable: no older transaction of the cluster (other test files run beside this one) holds it back.
    await eventually(async () => (await logSource(database).readAfter(read, 10)).length > 0, {
      what: "the event to be readable",
    });

    // Someone else moves the checkpoint after the worker read it: here an operator halts it.
    await markFailed(database.sql, "catalog", "halted by an operator", null);
    expect(await worker.run(read, () => false)).toBeUndefined();
    expect(await readProducts([product.id])).toEqual([]);
    expect(await checkpoint("catalog")).toMatchObject({ ...at(read), status: "FAILED" });

    expect(await markRunning(database.sql, "catalog")).toBe(1);
    await catchUpWith(projector);
    expect(await readProducts([product.id])).toMatchObject([{ available: 7 }]);
  });
});

describe("a projector that crashes between the read rows and the checkpoint", () => {
  it("leaves neither behind, and after a restart applies each event exactly once", async () => {
    const product = newProduct();
    await append(db.sql, productCreated(product, 10));
    await catchUpWith(projector);
    const before = await checkpoint("catalog");

    // One transaction, so both events always land in the same batch.
    const writer = await rawClient();
    try {
      await writer.query("BEGIN");
      await append(on(writer), stockAdjusted(product, 2, 5));
      await append(on(writer), orderPlaced(product, 2));
      await writer.query("COMMIT");
    } finally {
      await writer.end();
    }
    const end = await endOfLog();

    const crashedOn: string[][] = [];
    const crashingCatalog: typeof catalogProjection = {
      ...catalogProjection,
      project(events, tables) {
        const projected = catalogProjection.project(events, tables);
        if (crashedOn.length > 0) return projected;
        crashedOn.push(events.map((e) => e.type));
        // The connection dies after the batch's rows were sent, before its COMMIT.
        return {
          ...projected,
          statements: [...projected.statements, sql`SELECT pg_terminate_backend(pg_backend_pid())`],
        };
      },
    };
    const crashing = new Projector(database, [crashingCatalog, ordersProjection], projectorOptions);
    await eventually(async () => {
      await crashing.catchUp();
      return crashedOn.length > 0;
    }, CAUGHT_UP);
    expect(crashedOn).toEqual([["StockAdjusted", "OrderPlaced"]]);
    // The rows of the crashed batch were rolled back with it; the projection is not marked failed.
    expect(await readProducts([product.id])).toMatchObject([{ available: 10, units_sold: 0 }]);
    expect(await checkpoint("catalog")).toMatchObject({ ...at(before), status: "RUNNING" });

    const restarted = new Projector(database, allProjections, projectorOptions);
    await catchUpWith(restarted);
    expect(await readProducts([product.id])).toMatchObject([{ available: 10 + 5 - 2, units_sold: 2, in_stock: true }]);
    expect(await readOrderCount(product.id)).toBe(1);
    expect(await checkpoint("catalog")).toMatchObject({ ...end, status: "RUNNING" });

    await restarted.catchUp();
    expect(await readProducts([product.id])).toMatchObject([{ available: 13, units_sold: 2 }]);
    expect(await readOrderCount(product.id)).toBe(1);
  });

  it("retries a one-off failure event by event instead of halting the projection", async () => {
    const product = newProduct();
    await append(db.sql, productCreated(product, 4));
    await append(db.sql, stockAdjusted(product, 2, 3));
    await append(db.sql, orderPlaced(product, 1));

    let failures = 0;
    const flakyCatalog: typeof catalogProjection = {
      ...catalogProjection,
      project(events, tables) {
        if (failures === 0) {
          failures += 1;
          throw new Error("a one-off failure");
        }
        return catalogProjection.project(events, tables);
      },
    };
    const flaky = new Projector(database, [flakyCatalog, ordersProjection], projectorOptions);
    await catchUpWith(flaky);
    expect(failures).toBe(1);
    expect(await checkpoint("catalog")).toMatchObject({ status: "RUNNING", lastError: null });
    expect(await readProducts([product.id])).toMatchObject([{ available: 4 + 3 - 1, units_sold: 1 }]);
    expect(await readOrderCount(product.id)).toBe(1);
  });

  it("does not halt a projection when its source fails to answer (a broker timeout): the next run reads again", async () => {
    const product = newProduct();
    await append(db.sql, productCreated(product, 6));
    const log = logSource(database);
    let failures = 0;
    const flakySource: EventSource = {
      ...log,
      async readAfter(after, limit) {
        if (failures < 2) {
          failures += 1;
          throw new Error("timeout"); // what the NATS client says when a request gets no answer
        }
        return log.readAfter(after, limit);
      },
    };
    const reading = new Projector(database, allProjections, { ...projectorOptions, source: flakySource });
    await eventually(async () => {
      await reading.catchUp().catch(() => undefined);
      return (await readProducts([product.id])).length === 1;
    }, CAUGHT_UP);
    expect(failures).toBe(2);
    expect(await checkpoint("catalog")).toMatchObject({ status: "RUNNING", lastError: null });
    expect(await checkpoint("orders")).toMatchObject({ status: "RUNNING", lastError: null });
  });
});

async function rowsOf(db: Sql, products: string, orders: string, counts?: string) {
  // Whole rows as JSON (xid8 columns included).
  const all = async (table: string) =>
    (await db.query<{ row: unknown }>(`SELECT to_jsonb(t) AS row FROM ${table} t ORDER BY id`)).map((r) => r.row);
  return { products: await all(products), orders: await all(orders), ...(counts ? { counts: await all(counts) } : {}) };
}

async function wholeLog() {
  const [{ n }] = (await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM "write"."events"`)) as [{ n: number }];
  return eventually(async () => {
    const events = await committedEventsAfter(database.sql, LOG_START);
    return events.length === n ? events : undefined;
  }, CAUGHT_UP);
}

describe("replaying events a projection has already applied", () => {
  it("changes no row of the live read tables", async () => {
    await catchUpWith(projector);
    const events = await wholeLog();
    const before = await rowsOf(database.sql, `"read"."products"`, `"read"."orders"`);
    expect(before.products.length).toBeGreaterThan(0);
    expect(before.orders.length).toBeGreaterThan(0);

    const afterEach = await database.transaction(async (tx) => {
      const seen = [];
      for (let i = 0; i < 2; i++) {
        await tx.run(projectBatch(catalogProjection, events, catalogProjection.tables).statements);
        await tx.run(projectBatch(ordersProjection, events, ordersProjection.tables).statements);
        seen.push(await rowsOf(tx, `"read"."products"`, `"read"."orders"`));
      }
      return seen;
    });
    expect(afterEach).toEqual([before, before]);
  });

  it("gives the same rows applied twice in one batch as the projector built batch by batch", async () => {
    await catchUpWith(projector);
    const events = await wholeLog();
    const live = await rowsOf(database.sql, `"read"."products"`, `"read"."orders"`, `"read"."catalog_counts"`);
    const tables = {
      products: sql.identifier("pg_temp", "replay_products"),
      counts: sql.identifier("pg_temp", "replay_counts"),
      orders: sql.identifier("pg_temp", "replay_orders"),
    };

    const [once, twice] = await database.transaction(async (tx) => {
      await tx.query(`CREATE TEMP TABLE "replay_products" (LIKE "read"."products" INCLUDING ALL) ON COMMIT DROP`);
      await tx.query(`CREATE TEMP TABLE "replay_counts" (LIKE "read"."catalog_counts" INCLUDING ALL) ON COMMIT DROP`);
      await tx.query(`CREATE TEMP TABLE "replay_orders" (LIKE "read"."orders" INCLUDING ALL) ON COMMIT DROP`);
      const seen = [];
      for (let i = 0; i < 2; i++) {
        await tx.run(
          projectBatch(catalogProjection, events, { products: tables.products, counts: tables.counts }).statements,
        );
        await tx.run(projectBatch(ordersProjection, events, { orders: tables.orders }).statements);
        seen.push(await rowsOf(tx, tables.products.text, tables.orders.text, tables.counts.text));
      }
      return seen;
    });
    expect(twice).toEqual(once);
    expect(once).toEqual(live);
  });
});

// ---------- through a running API instance ----------

describe("with the API running", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(db);
  });
  afterAll(async () => t?.stop());

  async function createProduct(stock: number) {
    const sku = `SKU-${randomUUID().slice(0, 8)}`;
    const { createProduct } = await t.admin.ok(CreateProductDocument, {
      input: { sku, name: `Product ${sku}`, priceCents: 300, initialStock: stock },
    });
    expect(createProduct.product).not.toBeNull();
    return createProduct.product!;
  }

  const statusOf = async (name: string) =>
    (await t.admin.ok(ProjectionsDocument, {})).projections.find((p) => p.name === name)!;
  const metrics = async () => (await fetch(`${t.url}/metrics`)).text();

  describe("a poison event", () => {
    it("halts only the catalog projection, visibly, and it resumes after the cause is fixed and the operator retries", async () => {
      const victim = await createProduct(1);
      const other = await createProduct(5);
      // A ProductCreated reusing an existing sku: the write side would refuse it, the read
      // table's unique sku cannot hold it.
      const poisonProduct = { ...newProduct(), sku: victim.sku };
      const poison = await append(db.sql, productCreated(poisonProduct, 7));

      const failed = await eventually(
        async () => {
          const c = await checkpoint("catalog");
          return c.status === "FAILED" ? c : undefined;
        },
        { what: "the catalog projection to halt" },
      );
      expect(failed.failedPosition).toBe(poison.position);
      expect(failed.lastError).toMatch(/duplicate key|unique/i);

      // The orders projection keeps going: an order placed after the poison event is served.
      const { placeOrder } = await t.customer("after-poison").ok(PlaceOrderDocument, {
        input: { idempotencyKey: "after-poison", lines: [{ productId: other.id, quantity: 2 }] },
      });
      expect(placeOrder.order).toMatchObject({ status: "PLACED", itemCount: 2 });
      expect(await db.sql(`SELECT 1 FROM "read"."orders" WHERE id = $1`, [placeOrder.order!.id])).toHaveLength(1);
      // ... while the catalog stays where it halted.
      expect((await t.anonymous.ok(ProductDocument, { id: other.id })).product).toMatchObject({
        available: 5,
        unitsSold: 0,
      });

      // the lag, as the leader measures it on its next poll
      const catalog = await eventually(
        async () => {
          const c = await statusOf("catalog");
          return c.lagEvents >= 2 && c;
        },
        { what: "the halted catalog's lag to be measured" },
      );
      expect(catalog).toMatchObject({ status: "FAILED", failedPosition: poison.position.toString() });
      expect(catalog.lastError).toMatch(/duplicate key|unique/i);
      await eventually(async () => (await statusOf("orders")).lagEvents === 0, { what: "the orders caught up" });
      expect(await statusOf("orders")).toMatchObject({ status: "RUNNING", lastError: null });
      const scraped = await metrics();
      expect(scraped).toContain('shop_projection_failed{projection="catalog"} 1');
      expect(scraped).toContain('shop_projection_failed{projection="orders"} 0');

      // The fix: the conflicting row goes; then the operator's retry.
      await db.sql(`DELETE FROM "read"."products" WHERE id = $1`, [victim.id]);
      expect(await markRunning(t.app.db!.sql, "catalog")).toBe(1);

      await eventually(
        async () => {
          const rows = await readProducts([poisonProduct.id, other.id]);
          return (
            (await checkpoint("catalog")).status === "RUNNING" &&
            rows.length === 2 &&
            rows.find((r) => r.id === other.id)!.available === 3
          );
        },
        { ...CAUGHT_UP, what: "the catalog projection to resume" },
      );
      expect(await readProducts([poisonProduct.id])).toMatchObject([{ sku: victim.sku, available: 7 }]);
      expect((await t.anonymous.ok(ProductDocument, { id: other.id })).product).toMatchObject({
        available: 3,
        unitsSold: 2,
      });
      expect(await statusOf("catalog")).toMatchObject({ status: "RUNNING", lastError: null, failedPosition: null });
      expect(await metrics()).toContain('shop_projection_failed{projection="catalog"} 0');
    });
  });

  describe("a long-open transaction", () => {
    it("shows every projection lagging while it holds them back, and they catch up once it ends", async () => {
      const product = await createProduct(3);
      await eventually(
        async () => (await statusOf("catalog")).lagEvents === 0 && (await statusOf("orders")).lagEvents === 0,
        CAUGHT_UP,
      );

      const blocker = await rawClient();
      let restock: Promise<GqlResponse<unknown>> | undefined;
      let order: Promise<GqlResponse<unknown>> | undefined;
      try {
        await blocker.query("BEGIN");
        await blocker.query("SELECT pg_current_xact_id()");
        const [{ max }] = (await db.sql<{ max: string }>(
          `SELECT max(position)::text AS max FROM "write"."events"`,
        )) as [{ max: string }];

        restock = t.admin.request(RestockProductDocument, { input: { productId: product.id, quantity: 4 } });
        order = t.customer("held-back").request(PlaceOrderDocument, {
          input: { idempotencyKey: "held", lines: [{ productId: product.id, quantity: 1 }] },
        });
        await eventually(
          async () => {
            const [row] = await db.sql<{ n: number }>(
              `SELECT count(*)::int AS n FROM "write"."events" WHERE position > $1`,
              [max],
            );
            return row!.n === 2;
          },
          { what: "both commands to commit" },
        );

        const lagging = await eventually(
          async () => {
            const all = (await t.admin.ok(ProjectionsDocument, {})).projections.filter(
              (p) => p.name === "catalog" || p.name === "orders",
            );
            return all.length === 2 && all.every((p) => p.lagEvents === 2 && p.lagSeconds > 0) ? all : undefined;
          },
          { what: "the lag to show" },
        );
        expect(lagging.map((p) => p.status)).toEqual(["RUNNING", "RUNNING"]);
        expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product).toMatchObject({
          available: 3,
          unitsSold: 0,
        });
      } finally {
        await blocker.query("ROLLBACK").catch(() => undefined);
        await blocker.end();
      }

      await eventually(
        async () => {
          const all = (await t.admin.ok(ProjectionsDocument, {})).projections;
          return all.every((p) => p.lagEvents === 0);
        },
        { ...CAUGHT_UP, what: "the projections to catch up" },
      );
      expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product).toMatchObject({
        available: 3 + 4 - 1,
        unitsSold: 1,
      });
      for (const res of await Promise.all([restock!, order!])) expect(res.errors).toBeUndefined();
    });
  });
});
