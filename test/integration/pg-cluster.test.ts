import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrimary, stopAll, type PgPrimary, type PgReplica } from "../support/pgCluster";
import { eventually } from "../support/wait";

// The test helper itself: a real Postgres 15 primary and a real streaming replica of it, in temporary
// folders on free ports, never the machine's own cluster on 5432.
const SLOW = 60_000;

let primary: PgPrimary;
let replica: PgReplica;

async function ids(server: PgPrimary | PgReplica): Promise<number[]> {
  const rows = await server.sql<{ id: number }>("SELECT id FROM replicated ORDER BY id");
  return rows.map((r) => r.id);
}

async function currentLsn(): Promise<string> {
  const [row] = await primary.sql<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  return row!.lsn;
}

beforeAll(async () => {
  const t0 = performance.now();
  primary = await startPrimary();
  const t1 = performance.now();
  replica = await primary.addReplica();
  const t2 = performance.now();
  console.info(`pgCluster: startPrimary ${Math.round(t1 - t0)} ms, addReplica ${Math.round(t2 - t1)} ms`);
}, SLOW);

afterAll(async () => {
  await stopAll();
}, SLOW);

describe("pgCluster", () => {
  it("makes its own servers in temporary folders, not the machine's cluster", async () => {
    for (const server of [primary, replica]) {
      expect(server.port).not.toBe(5432);
      expect(server.dataDir.startsWith(tmpdir())).toBe(true);
      expect((await stat(server.dataDir)).mode & 0o777).toBe(0o700);
      const [row] = await server.sql<{ port: string; dir: string }>(
        "SELECT current_setting('port') AS port, current_setting('data_directory') AS dir",
      );
      expect(row).toEqual({ port: String(server.port), dir: server.dataDir });
    }
    expect(replica.port).not.toBe(primary.port);
  });

  it("the replica is in recovery and streams from the primary", async () => {
    expect(await primary.sql("SELECT pg_is_in_recovery() AS r")).toEqual([{ r: false }]);
    expect(await replica.sql("SELECT pg_is_in_recovery() AS r")).toEqual([{ r: true }]);
    const senders = await primary.sql<{ state: string }>("SELECT state FROM pg_stat_replication");
    expect(senders).toEqual([{ state: "streaming" }]);
  });

  it("rows written on the primary reach the replica, which refuses writes", async () => {
    await primary.sql("CREATE TABLE replicated (id int PRIMARY KEY)");
    await primary.sql("INSERT INTO replicated VALUES (1)");
    await eventually(async () => (await ids(replica)).includes(1), {
      timeoutMs: 10_000,
      what: "row 1 on the replica",
    });
    await expect(replica.sql("INSERT INTO replicated VALUES (99)")).rejects.toThrow(/read-only transaction/);
  });

  it("a paused replica receives WAL but does not replay it until resumed", async () => {
    await replica.pauseReplay();
    expect(await replica.sql("SELECT pg_get_wal_replay_pause_state() AS s")).toEqual([{ s: "paused" }]);

    await primary.sql("INSERT INTO replicated VALUES (2)");
    const lsn = await currentLsn();
    // The WAL of row 2 reaches the replica...
    await eventually(
      async () => {
        const [row] = await replica.sql<{ ok: boolean }>("SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn AS ok", [lsn]);
        return row!.ok;
      },
      { timeoutMs: 10_000, what: "the replica to receive the WAL of row 2" },
    );
    // ...but is not replayed: row 2 stays invisible while the replay position is behind the primary.
    const [behind] = await replica.sql<{ behind: boolean }>("SELECT pg_last_wal_replay_lsn() < $1::pg_lsn AS behind", [
      lsn,
    ]);
    expect(behind!.behind).toBe(true);
    expect(await ids(replica)).toEqual([1]);

    await replica.resumeReplay();
    await eventually(async () => (await ids(replica)).includes(2), { timeoutMs: 10_000, what: "row 2 after resume" });
    const [caughtUp] = await replica.sql<{ ok: boolean }>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok", [lsn]);
    expect(caughtUp!.ok).toBe(true);
  });

  it("a killed primary starts again after crash recovery and the replica streams again", async () => {
    await primary.kill();
    await primary.kill(); // idempotent
    await expect(primary.sql("SELECT 1")).rejects.toThrow();
    await primary.start();
    await primary.sql("INSERT INTO replicated VALUES (3)");
    await eventually(async () => (await ids(replica)).includes(3), { timeoutMs: 20_000, what: "row 3 on the replica" });
  });

  it("a stopped replica starts again and catches up", async () => {
    await replica.stop();
    await replica.stop(); // idempotent
    await primary.sql("INSERT INTO replicated VALUES (4)");
    await replica.start();
    await eventually(async () => (await ids(replica)).includes(4), { timeoutMs: 20_000, what: "row 4 on the replica" });
    expect(await ids(replica)).toEqual([1, 2, 3, 4]);
  });

  it("stopAll stops both servers and removes their folders", async () => {
    await stopAll();
    for (const server of [replica, primary]) {
      expect(existsSync(server.dataDir)).toBe(false);
      await expect(server.sql("SELECT 1")).rejects.toThrow();
    }
    await stopAll(); // nothing left: a no-op (afterAll calls it again too)
  });
});
