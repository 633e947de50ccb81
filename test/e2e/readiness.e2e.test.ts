import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupFile } from "../support/app";

// /readyz: the database reachable, every migration applied, the running projections within the
// lag bound; its checks run side by side (under load each waits its turn for a connection).
let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  // No projector: the test renames a table it writes.
  t = await setupFile({ runProjector: false });
});
afterAll(async () => {
  await t?.teardown();
});

const readyz = async () => {
  const res = await fetch(`${t.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
};

describe("/readyz", () => {
  it("is ready on a migrated database, and names a migration that is not applied, even when the tables it would make are missing", async () => {
    expect(await readyz()).toEqual({ status: 200, body: { status: "ready" } });

    const [last] = await t.db.sql<{ migration_name: string }>(
      `SELECT migration_name FROM "public"."_prisma_migrations" ORDER BY migration_name DESC LIMIT 1`,
    );
    const name = last!.migration_name;
    await t.db.sql(`UPDATE "public"."_prisma_migrations" SET finished_at = NULL WHERE migration_name = $1`, [name]);
    // The projections' statuses cannot be read either: the missing migration is still the reason.
    await t.db.sql(`ALTER TABLE "read"."projection_checkpoints" RENAME TO projection_checkpoints_away`);
    try {
      expect(await readyz()).toEqual({
        status: 503,
        body: { status: "not ready", reason: `migrations not applied: ${name}` },
      });
    } finally {
      await t.db.sql(`ALTER TABLE "read"."projection_checkpoints_away" RENAME TO projection_checkpoints`);
      await t.db.sql(`UPDATE "public"."_prisma_migrations" SET finished_at = now() WHERE migration_name = $1`, [name]);
    }

    // The statuses alone failing: the database's error is the reason.
    await t.db.sql(`ALTER TABLE "read"."projection_checkpoints" RENAME TO projection_checkpoints_away`);
    try {
      const { status, body } = await readyz();
      expect(status).toBe(503);
      expect(body.reason).toMatch(/^database unreachable: /);
    } finally {
      await t.db.sql(`ALTER TABLE "read"."projection_checkpoints_away" RENAME TO projection_checkpoints`);
    }
    expect(await readyz()).toEqual({ status: 200, body: { status: "ready" } });
  });
});
