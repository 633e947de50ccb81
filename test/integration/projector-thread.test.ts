import { randomUUID } from "node:crypto";
import type { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupFile, type TestApp } from "../support/app";
import type { TestDatabase } from "../support/db";
import { eventually } from "../support/wait";
import { CreateProductDocument, ProductDocument, RestockProductDocument } from "../../src/storefront/generated/graphql";
import { Projector } from "../../src/projection/projector";
import { PROJECTION_LEASES } from "../../src/projection/leases";
import { allProjections } from "../../src/projection/projections";
import { ProjectorThread } from "../../src/projection/projectorThread";

// On Postgres the API runs its projector on a worker thread (src/projection/projectorThread.ts).

let t: TestApp & { db: TestDatabase; teardown(): Promise<void> };

beforeAll(async () => {
  t = await setupFile({ projectorPollMs: 200 });
});
afterAll(() => t?.teardown());

/** Projection leases held in this database: the one instance here leads both projections. */
const leaderLocks = async () =>
  (
    await t.db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [PROJECTION_LEASES],
    )
  )[0]!.n;

describe("the projector thread", () => {
  it("leads and projects: a mutation reads its own write from the read table", async () => {
    expect(t.app.projector).toBeInstanceOf(ProjectorThread);
    await eventually(() => t.app.projector!.isLeader, { what: "the thread to lead" });
    const created = await t.admin.ok(CreateProductDocument, {
      input: { sku: `THR-${randomUUID().slice(0, 8)}`, name: "Thread", priceCents: 100, initialStock: 5 },
    });
    expect(created.createProduct.product?.available).toBe(5);
  });

  it("is started again when it dies, takes the lead again, and the read side catches up", async () => {
    const created = await t.admin.ok(CreateProductDocument, {
      input: { sku: `THR-${randomUUID().slice(0, 8)}`, name: "Thread 2", priceCents: 100, initialStock: 1 },
    });
    const id = created.createProduct.product!.id;
    const worker = (t.app.projector as unknown as { worker: Worker }).worker;
    await worker.terminate();
    expect(t.app.projector!.isLeader).toBe(false);
    // Committed while no projector runs: the new thread must pick it up from the checkpoint.
    await t.admin.request(RestockProductDocument, { input: { productId: id, quantity: 9 } });
    await eventually(() => t.app.projector!.isLeader, { timeoutMs: 10_000, what: "a new thread to lead" });
    await eventually(async () => (await t.anonymous.ok(ProductDocument, { id })).product?.available === 10, {
      timeoutMs: 10_000,
      what: "the restock in the read table",
    });
    expect(await leaderLocks()).toBe(allProjections.length);
  });

  it("lets go of the lead when stopped, and leads again when started", async () => {
    await t.app.projector!.stop();
    expect(t.app.projector!.isLeader).toBe(false);
    expect(await leaderLocks()).toBe(0);
    await t.app.projector!.start();
    await eventually(() => t.app.projector!.isLeader, { what: "the thread to lead again" });
  });

  it("is not used when a test injects its own projections (they need the projector in the API's thread)", async () => {
    const inline = await setupFile({}, { projections: allProjections });
    try {
      expect(inline.app.projector).toBeInstanceOf(Projector);
    } finally {
      await inline.teardown();
    }
  });
});
