import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database";
import { openPostgres } from "../../src/db/postgres";
import { ProjectionQueries } from "../../src/query/projections.queries";
import { freshDatabase, type TestDatabase } from "../support/db";

// The lag figures as the query side shows them, from what a projector stored in read.projection_lag.

let db: TestDatabase;
let database: Database;
beforeAll(async () => {
  db = await freshDatabase();
  database = openPostgres(db.url, 2);
  await db.sql(`INSERT INTO "read"."projection_checkpoints" (name) VALUES ('catalog'), ('orders'), ('fresh')`);
});
afterAll(async () => {
  await database?.close();
  await db?.drop();
});

async function measured(name: string, events: number, oldestSecondsAgo: number | null, measuredSecondsAgo: number) {
  await db.sql(
    `INSERT INTO "read"."projection_lag" (name, events, oldest_at, measured_at, measured_by)
     VALUES ($1, $2, now() - make_interval(secs => $3::float8), now() - make_interval(secs => $4::float8), 'test')`,
    [name, events, oldestSecondsAgo, measuredSecondsAgo],
  );
}

describe("the projections' lag, as the query side shows it", () => {
  it("is the age of the oldest pending event when measured, and counts on to now once the measurement is stale", async () => {
    await measured("catalog", 3, 11, 1); // measured a second ago: the oldest was 10 s old then
    await measured("orders", 2, 70, 60); // nobody measured for a minute: 70 s old by now
    const statuses = new Map((await new ProjectionQueries(database.prisma, 5000).statuses()).map((s) => [s.name, s]));

    expect(statuses.get("catalog")).toMatchObject({ lagEvents: 3 });
    expect(statuses.get("catalog")!.lagSeconds).toBeCloseTo(10, 2);
    expect(statuses.get("orders")).toMatchObject({ lagEvents: 2 });
    // 70 s at the insert, plus however long the test took since
    expect(statuses.get("orders")!.lagSeconds).toBeGreaterThanOrEqual(70);
    expect(statuses.get("orders")!.lagSeconds).toBeLessThan(80);
    expect(statuses.get("orders")!.lagMeasuredAt!.getTime()).toBeLessThan(Date.now() - 59_000);
    // never measured: no figures yet
    expect(statuses.get("fresh")).toMatchObject({ lagEvents: 0, lagSeconds: 0, lagMeasuredAt: null });
  });
});
