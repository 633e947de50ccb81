import { randomUUID } from "node:crypto";
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database";
import { loadMigrations, migrate } from "../../src/db/migrate";
import { openEmbedded } from "../../src/db/pglite";
import { copyEmbeddedTemplate, prepareEmbeddedTemplate } from "../../src/db/pgliteTemplate";

// The embedded database (PGlite) in a fresh temporary folder. A fresh folder is a copy of the
// installation's template (the global setup makes it); one that cannot be runs initdb, which
// takes several seconds, hence the generous timeouts.
const SLOW = 60_000;

let dir: string;
let db: Database;

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function appendEvent(tx: Pick<Database["prisma"], "$executeRawUnsafe">, type: string): Promise<void> {
  await tx.$executeRawUnsafe(
    `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
     VALUES ($1::uuid, 'Order', 1, $2, $3::jsonb, '{}'::jsonb, now())`,
    randomUUID(),
    type,
    JSON.stringify({ type }),
  );
}

async function countEvents(): Promise<number> {
  const [row] = await db.prisma.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM "write"."events"`);
  return row!.n;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "embedded-db-test-"));
  db = await openEmbedded(join(dir, "data")); // a missing folder is created
}, SLOW);

afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}, SLOW);

describe("embedded database (PGlite)", () => {
  it(
    "applies every migration on a fresh folder",
    async () => {
      expect(db.kind).toBe("embedded");
      expect(db.location).toBe(join(dir, "data"));
      const onDisk = (await loadMigrations()).map((m) => m.name);
      expect(await migrate(db)).toEqual(onDisk);
      expect(await migrate(db)).toEqual([]);
    },
    SLOW,
  );

  it("lets the rest of the process run during a loop of queries, as a database over a socket does", async () => {
    // PGlite answers without I/O: without a turn of the event loop now and then, a loop of
    // queries would hold off every timer and socket until it ended (a server rebuilding on it
    // read no request). The loop ends when the callback has run, or after 5 s of queries.
    for (const run of [
      (text: string) => db.sql.query(text),
      (text: string) => db.transaction((tx) => tx.query(text)),
      (text: string) => db.prisma.$queryRawUnsafe(text),
    ]) {
      let turned = false;
      setImmediate(() => (turned = true));
      const started = performance.now();
      while (!turned && performance.now() - started < 5000) await run("SELECT 1");
      expect(turned).toBe(true);
    }
  });

  it("supports the transaction-id functions the event log relies on", async () => {
    const session = await db.openSession();
    try {
      const [row] = await session.query<{ xid: string; xmin: string; big: string }>(
        "SELECT pg_current_xact_id() AS xid, pg_snapshot_xmin(pg_current_snapshot()) AS xmin, 9007199254740993::int8 AS big",
      );
      // xid8 and int8 come back as exact strings, as with pg.
      expect(row!.xid).toMatch(/^\d+$/);
      expect(BigInt(row!.xmin)).toBeLessThanOrEqual(BigInt(row!.xid));
      expect(row!.big).toBe("9007199254740993");
    } finally {
      await session.close();
    }
    // Prisma cannot deserialise xid8 (neither over PGlite nor over pg): cast in raw queries.
    const [viaPrisma] = await db.prisma.$queryRawUnsafe<{ xid: string }[]>("SELECT pg_current_xact_id()::text AS xid");
    expect(viaPrisma!.xid).toMatch(/^\d+$/);
  });

  it("notifies events_appended after a commit, and not for a rolled-back transaction", async () => {
    const received: string[] = [];
    const listener = await db.listen(["events_appended"], {
      onNotify: (channel) => received.push(channel),
    });
    try {
      const before = await countEvents();
      await expect(
        db.prisma.$transaction(async (tx) => {
          await appendEvent(tx, "RolledBack");
          throw new Error("abort");
        }),
      ).rejects.toThrow("abort");

      let seenBeforeCommit = -1;
      await db.prisma.$transaction(async (tx) => {
        await appendEvent(tx, "Committed");
        await tx.$queryRawUnsafe("SELECT 1"); // give any (wrong) early delivery a chance
        seenBeforeCommit = received.length;
      });
      await waitFor(() => received.length >= 1);

      expect(seenBeforeCommit).toBe(0);
      // The rolled-back insert came first: had it notified, there would be two by now.
      expect(received).toEqual(["events_appended"]);
      expect(await countEvents()).toBe(before + 1);
    } finally {
      await listener.close();
    }

    // After close, nothing more arrives (checked after a later notification on another listener).
    const other: string[] = [];
    const second = await db.listen(["events_appended"], { onNotify: (c) => other.push(c) });
    try {
      await db.prisma.$transaction(async (tx) => appendEvent(tx, "AfterClose"));
      await waitFor(() => other.length >= 1);
      expect(received).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it("serialises concurrent interactive transactions", async () => {
    await db.prisma.$executeRawUnsafe(`CREATE TABLE public.test_counter (id int PRIMARY KEY, n int NOT NULL)`);
    await db.prisma.$executeRawUnsafe(
      `CREATE TABLE public.test_tx_log (seq int GENERATED ALWAYS AS IDENTITY, worker int, step int, xid text)`,
    );
    await db.prisma.$executeRawUnsafe(`INSERT INTO public.test_counter VALUES (1, 0)`);

    const workers = 10;
    const steps = 3;
    await Promise.all(
      Array.from({ length: workers }, (_, worker) =>
        db.prisma.$transaction(async (tx) => {
          // Read, yield to the event loop, then write back: a lost update if transactions interleaved.
          const [row] = await tx.$queryRawUnsafe<{ n: number }[]>(`SELECT n FROM public.test_counter WHERE id = 1`);
          for (let step = 0; step < steps; step++) {
            await tx.$executeRawUnsafe(
              `INSERT INTO public.test_tx_log (worker, step, xid) VALUES ($1, $2, pg_current_xact_id()::text)`,
              worker,
              step,
            );
            await new Promise((r) => setTimeout(r, 1));
          }
          await tx.$executeRawUnsafe(`UPDATE public.test_counter SET n = $1 WHERE id = 1`, row!.n + 1);
        }),
      ),
    );

    const [counter] = await db.prisma.$queryRawUnsafe<{ n: number }[]>(
      `SELECT n FROM public.test_counter WHERE id = 1`,
    );
    expect(counter!.n).toBe(workers);

    const log = await db.prisma.$queryRawUnsafe<{ worker: number; step: number; xid: string }[]>(
      `SELECT worker, step, xid FROM public.test_tx_log ORDER BY seq`,
    );
    expect(log).toHaveLength(workers * steps);
    // Each transaction's statements are contiguous, in order, and in one transaction.
    for (let i = 0; i < log.length; i += steps) {
      const block = log.slice(i, i + steps);
      expect(block.map((r) => r.step)).toEqual([0, 1, 2]);
      expect(new Set(block.map((r) => r.worker)).size).toBe(1);
      expect(new Set(block.map((r) => r.xid)).size).toBe(1);
    }
    expect(new Set(log.map((r) => r.xid)).size).toBe(workers);
  });

  it("keeps a session's BEGIN..ROLLBACK apart from concurrent Prisma work", async () => {
    await db.prisma.$executeRawUnsafe(`CREATE TABLE public.test_session (v int)`);
    const session = await db.openSession();
    try {
      await session.exec("BEGIN");
      await session.query("INSERT INTO public.test_session VALUES ($1)", [1]);
      // Issued while the session's transaction is open: must not run inside it.
      const prismaWrite = db.prisma.$executeRawUnsafe(`INSERT INTO public.test_session VALUES (2)`);
      const prismaTx = db.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO public.test_session VALUES (3)`);
      });
      await new Promise((r) => setTimeout(r, 10));
      await session.exec("ROLLBACK");
      await Promise.all([prismaWrite, prismaTx]);

      // A failing statement inside a transaction, then ROLLBACK (the migration runner's error path).
      await session.exec("BEGIN");
      await expect(session.exec("SELECT 1/0")).rejects.toThrow(/division by zero/);
      await session.exec("ROLLBACK");
      expect(await session.query<{ one: number }>("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    } finally {
      await session.close();
    }
    const rows = await db.prisma.$queryRawUnsafe<{ v: number }[]>(`SELECT v FROM public.test_session ORDER BY v`);
    expect(rows.map((r) => r.v)).toEqual([2, 3]);
  });

  it("stays usable after a Prisma transaction fails on a constraint", async () => {
    const id = randomUUID();
    const now = new Date();
    const product = {
      id,
      sku: `sku-${id}`,
      name: "Thing",
      priceCents: 100,
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    await db.prisma.product.create({ data: product });
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.product.update({ where: { id }, data: { name: "Changed" } });
        await tx.product.create({ data: { ...product, id: randomUUID() } }); // duplicate sku
      }),
    ).rejects.toMatchObject({ code: "P2002" });
    expect((await db.prisma.product.findUniqueOrThrow({ where: { id } })).name).toBe("Thing");
  });

  it(
    "keeps data across close and reopen, and migrating again changes nothing",
    async () => {
      await db.prisma.$transaction(async (tx) => appendEvent(tx, "BeforeReopen"));
      const events = await countEvents();
      const migrations = await db.prisma.$queryRawUnsafe<{ migration_name: string; checksum: string }[]>(
        `SELECT migration_name, checksum FROM "public"."_prisma_migrations" ORDER BY migration_name`,
      );

      await db.close();
      db = await openEmbedded(join(dir, "data"));

      expect(await migrate(db)).toEqual([]);
      expect(await countEvents()).toBe(events);
      expect(
        await db.prisma.$queryRawUnsafe(
          `SELECT migration_name, checksum FROM "public"."_prisma_migrations" ORDER BY migration_name`,
        ),
      ).toEqual(migrations);
      const [last] = await db.prisma.$queryRawUnsafe<{ type: string }[]>(
        `SELECT type FROM "write"."events" ORDER BY position DESC LIMIT 1`,
      );
      expect(last!.type).toBe("BeforeReopen");
    },
    SLOW,
  );

  it(
    "refuses a folder that another live process holds, and takes over a stale lock",
    async () => {
      const other = join(dir, "locked");
      await mkdir(other, { recursive: true });
      await writeFile(join(other, "shop-api.lock"), String(process.ppid)); // a live process that is not us
      await expect(openEmbedded(other)).rejects.toThrow(/in use by process/);

      await writeFile(join(other, "shop-api.lock"), "999999999"); // no such process: a crash left it
      const reopened = await openEmbedded(other);
      try {
        expect(await readFile(join(other, "shop-api.lock"), "utf8")).toBe(String(process.pid)); // ours now
      } finally {
        await reopened.close();
      }
      await expect(readFile(join(other, "shop-api.lock"), "utf8")).rejects.toThrow(/ENOENT/); // given back
    },
    SLOW,
  );
});

describe("a new embedded database is a copy of the installation's template", () => {
  const exists = (path: string) =>
    access(path).then(
      () => true,
      () => false,
    );

  it(
    "copies the template into a new folder, which then opens and migrates; an existing database is left alone",
    async () => {
      const template = await prepareEmbeddedTemplate();
      expect(await prepareEmbeddedTemplate()).toBe(template); // made once
      expect(await exists(join(template, "PG_VERSION"))).toBe(true);

      const fresh = join(dir, "copies", "fresh");
      expect(await copyEmbeddedTemplate(fresh)).toBe(true);
      expect(await readFile(join(fresh, "PG_VERSION"), "utf8")).toBe(
        await readFile(join(template, "PG_VERSION"), "utf8"),
      );
      const copy = await openEmbedded(fresh);
      try {
        await migrate(copy);
        const [row] = await copy.sql.query<{ n: string }>(`SELECT count(*) AS n FROM "write"."events"`);
        expect(row!.n).toBe("0");
      } finally {
        await copy.close();
      }
      expect(await copyEmbeddedTemplate(fresh)).toBe(false); // a database already
      expect(await readdir(join(dir, "copies"))).toEqual(["fresh"]); // nothing built beside it is left
    },
    SLOW,
  );

  it(
    "never copies over a folder holding files of its own, and removes what a killed process left half-built",
    async () => {
      const own = join(dir, "own-files");
      await mkdir(own, { recursive: true });
      await writeFile(join(own, "notes.txt"), "mine");
      const leftover = `${own}.999999999.tmp`; // no such process: killed while copying
      await mkdir(leftover);
      await writeFile(join(leftover, "PG_VERSION"), "17");

      expect(await copyEmbeddedTemplate(own)).toBe(false);
      expect(await readdir(own)).toEqual(["notes.txt"]);
      expect(await exists(leftover)).toBe(false);
      expect((await readdir(dir)).filter((name) => name.startsWith("own-files"))).toEqual(["own-files"]);
    },
    SLOW,
  );
});
