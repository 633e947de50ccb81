import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { batchById } from "../../src/query/batchById";

interface Row {
  id: string;
  n: number;
}

/** A loadMany over a fixed table that records each statement it would run. */
function table(rows: Row[]) {
  const calls: string[][] = [];
  const loadMany = async (ids: string[]) => {
    calls.push(ids);
    return rows.filter((r) => ids.includes(r.id));
  };
  return { calls, byId: batchById(loadMany) };
}

describe("by-id reads of one turn of the event loop", () => {
  it("go in one statement, each caller getting its own row (or null), duplicates and case folded", async () => {
    const [a, b, missing] = [randomUUID(), randomUUID(), randomUUID()];
    const { calls, byId } = table([
      { id: a, n: 1 },
      { id: b, n: 2 },
    ]);
    const answers = await Promise.all([byId(a), byId(b.toUpperCase()), byId(a), byId(missing), byId("not-a-uuid")]);
    expect(answers).toEqual([{ id: a, n: 1 }, { id: b, n: 2 }, { id: a, n: 1 }, null, null]);
    expect(calls).toEqual([[a, b, missing]]);
  });

  it("asked from callbacks of the same turn (requests that arrived together) go in one statement too", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const { calls, byId } = table([
      { id: a, n: 1 },
      { id: b, n: 2 },
    ]);
    // Two immediates queued in one turn run in one pass of the loop's check phase, each a callback
    // of its own, as the sockets' callbacks of one poll do. (Two timers are not that: each reads the
    // clock when set, so across a millisecond boundary the second is due a pass later.)
    const answers = await Promise.all(
      [a, b].map((id) => new Promise<Row | null>((resolve) => setImmediate(() => resolve(byId(id))))),
    );
    expect(answers).toEqual([
      { id: a, n: 1 },
      { id: b, n: 2 },
    ]);
    expect(calls).toEqual([[a, b]]);
  });

  it("of a later turn go in a statement of their own", async () => {
    const a = randomUUID();
    const { calls, byId } = table([{ id: a, n: 1 }]);
    expect(await byId(a)).toEqual({ id: a, n: 1 });
    expect(await byId(a)).toEqual({ id: a, n: 1 });
    expect(calls).toEqual([[a], [a]]);
  });

  it("all fail with the statement's error, and the next turn tries again", async () => {
    const a = randomUUID();
    let fail = true;
    const byId = batchById<Row>(async (ids) => {
      if (fail) throw new Error("connection lost");
      return ids.map((id) => ({ id, n: 0 }));
    });
    const results = await Promise.allSettled([byId(a), byId(randomUUID())]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    expect(await byId(a)).toEqual({ id: a, n: 0 });
  });
});
