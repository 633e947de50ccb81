import { describe, expect, it } from "vitest";
import { setImmediate as turn, setTimeout as delay } from "node:timers/promises";
import { createLogger } from "../../src/logger";
import { OrderedPublisher } from "../../src/realtime/orderedPublisher";
import { Topic } from "../../src/realtime/subscriptionHub";

interface Row {
  id: string;
  position: string;
  v: string;
}

/** A publisher whose loads the test answers, one by one, with the rows of its choice. */
function setup() {
  const topic = new Topic<Row>();
  const loads: { ids: string[]; answer: (rows: Row[]) => void; fail: (error: Error) => void }[] = [];
  const publisher = new OrderedPublisher<Row>(
    topic,
    (ids) => new Promise((resolve, reject) => loads.push({ ids: [...ids].sort(), answer: resolve, fail: reject })),
    createLogger("silent"),
    "rows",
  );
  const pushed: string[] = [];
  const all = topic.subscribe(undefined);
  void (async () => {
    for await (const row of all) pushed.push(`${row.id}@${row.position}:${row.v}`);
  })();
  /** Until the publisher has asked for its next load (or has nothing to load). */
  const settle = async () => {
    for (let i = 0; i < 5; i++) await turn();
  };
  return { publisher, loads, pushed, settle, stop: () => all.return?.() };
}

const row = (id: string, position: number, v: string): Row => ({ id, position: String(position), v });

/** Until the condition holds, or 2 s have passed (the retries' pauses are timers of 0 ms). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await delay(1);
}

describe("OrderedPublisher: pushes in the log's order", () => {
  it("loads one batch of ids at a time: a later load never overtakes an earlier one", async () => {
    const t = setup();
    t.publisher.changed(["a"], 5n);
    await t.settle();
    expect(t.loads.map((l) => l.ids)).toEqual([["a"]]);
    t.publisher.changed(["a"], 7n); // named again while the first load runs: waits for it
    await t.settle();
    expect(t.loads).toHaveLength(1);
    t.loads[0]!.answer([row("a", 5, "v1")]);
    await t.settle();
    expect(t.loads.map((l) => l.ids)).toEqual([["a"], ["a"]]);
    t.loads[1]!.answer([row("a", 7, "v2")]);
    await t.settle();
    expect(t.pushed).toEqual(["a@5:v1", "a@7:v2"]);
    t.stop();
  });

  it("loads together what is named in one turn (a batch's chunked messages), and pushes it sorted by position", async () => {
    const t = setup();
    t.publisher.changed(["b", "a"], 9n);
    t.publisher.changed(["c"], 9n);
    await t.settle();
    expect(t.loads.map((l) => l.ids)).toEqual([["a", "b", "c"]]);
    t.loads[0]!.answer([row("c", 9, "c1"), row("a", 4, "a1"), row("b", 6, "b1")]);
    await t.settle();
    expect(t.pushed).toEqual(["a@4:a1", "b@6:b1", "c@9:c1"]);
    t.stop();
  });

  it("leaves a row a later batch already changed to that batch's message, so a resume from the last row misses nothing", async () => {
    const t = setup();
    // Batch 1 (up to 6) changed a and b; by the time they are read, batch 2 (up to 8) changed a again, and d.
    t.publisher.changed(["a", "b"], 6n);
    await t.settle();
    t.loads[0]!.answer([row("a", 8, "a2"), row("b", 6, "b1")]);
    await t.settle();
    expect(t.pushed).toEqual(["b@6:b1"]); // not a@8 before d@7: a client resuming from 8 would miss d
    t.publisher.changed(["a", "d"], 8n);
    await t.settle();
    t.loads[1]!.answer([row("a", 8, "a2"), row("d", 7, "d1")]);
    await t.settle();
    expect(t.pushed).toEqual(["b@6:b1", "d@7:d1", "a@8:a2"]);
    t.stop();
  });

  it("still pushes a row that changes in every batch, one batch behind, though every load finds it changed again", async () => {
    const t = setup();
    for (const [upTo, found] of [
      [5, 6],
      [6, 7],
      [7, 8],
    ] as const) {
      t.publisher.changed(["hot"], BigInt(upTo));
      await t.settle();
      t.loads.at(-1)!.answer([row("hot", found, `v${found}`)]);
      await t.settle();
    }
    expect(t.pushed).toEqual(["hot@6:v6", "hot@7:v7"]);
    t.stop();
  });

  it("while paused, collects what is named and loads it as one once resumed; closed, loads nothing", async () => {
    const t = setup();
    t.publisher.pause();
    t.publisher.changed(["a"], 2n);
    t.publisher.changed(["b"], 3n);
    await t.settle();
    expect(t.loads).toHaveLength(0);
    t.publisher.resume();
    await t.settle();
    expect(t.loads.map((l) => l.ids)).toEqual([["a", "b"]]);
    t.loads[0]!.answer([row("a", 2, "a"), row("b", 3, "b")]);
    await t.settle();
    expect(t.pushed).toEqual(["a@2:a", "b@3:b"]);
    t.publisher.close();
    t.publisher.changed(["c"], 4n);
    await t.settle();
    expect(t.loads).toHaveLength(1);
    t.stop();
  });

  it("tries a failed load again shortly, with what was named meanwhile, and gives up after 3 failures in a row", async () => {
    const topic = new Topic<Row>();
    const asked: string[][] = [];
    let failing = 1;
    const publisher = new OrderedPublisher<Row>(
      topic,
      (ids) => {
        asked.push([...ids].sort());
        return failing-- > 0
          ? Promise.reject(new Error("statement cancelled"))
          : Promise.resolve(ids.map((id) => row(id, 3, "v")));
      },
      createLogger("silent"),
      "rows",
      { pauseMs: 0, attempts: 3 },
    );
    const pushed: string[] = [];
    const sub = topic.subscribe(undefined);
    void (async () => {
      for await (const r of sub) pushed.push(r.id);
    })();
    publisher.changed(["a"], 3n);
    await turn();
    publisher.changed(["b"], 3n); // named while the first load fails
    await until(() => pushed.length === 2);
    expect(asked).toEqual([["a"], ["a", "b"]]);
    expect(pushed).toEqual(["a", "b"]);

    failing = 10;
    publisher.changed(["c"], 4n);
    await until(() => asked.length === 5);
    expect(asked.slice(2)).toEqual([["c"], ["c"], ["c"]]); // then given up
    failing = 0;
    publisher.changed(["d"], 5n); // and the next change is loaded as usual
    await until(() => pushed.length === 3);
    expect(pushed).toEqual(["a", "b", "d"]);
    await sub.return?.();
  });

  it("loads nothing for ids nobody subscribed to", async () => {
    const topic = new Topic<Row>();
    let loads = 0;
    const publisher = new OrderedPublisher<Row>(
      topic,
      () => (++loads, Promise.resolve([])),
      createLogger("silent"),
      "rows",
    );
    publisher.changed(["x"], 1n);
    for (let i = 0; i < 5; i++) await turn();
    expect(loads).toBe(0);
  });
});
