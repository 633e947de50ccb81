import { describe, expect, it } from "vitest";
import { Backlog } from "../../src/db/backlog";

/** A Backlog on a clock the test moves, and connections it hands out when told. */
function setup(targetMs: number) {
  let now = 1_000;
  const backlog = new Backlog(targetMs, () => now);
  const pending: (() => void)[] = [];
  return {
    backlog,
    advance: (ms: number) => (now += ms),
    /** A transaction asking for a connection now; it gets it at grant(). */
    ask: () => backlog.wait(() => new Promise<void>((resolve) => pending.push(resolve))),
    /** The oldest waiter gets its connection (after `ms` more). */
    async grant(ms = 0) {
      now += ms;
      pending.shift()!();
      await Promise.resolve();
      await Promise.resolve();
    },
  };
}

describe("Backlog (a standing queue for connections)", () => {
  it("a burst that waits, then drains, is not standing", async () => {
    const q = setup(50);
    for (let i = 0; i < 10; i++) void q.ask();
    q.advance(200);
    expect(q.backlog.standing()).toBe(false); // long waits, but none has been seen to end yet
    for (let i = 0; i < 10; i++) await q.grant(20);
    expect(q.backlog.standing()).toBe(false); // nothing waits
    q.advance(200);
    void q.ask();
    expect(q.backlog.standing()).toBe(false); // the waits of the burst's window are not the last window's
  });

  it("stands once every wait of a whole window was above the target, while some still wait", async () => {
    const q = setup(50);
    for (let i = 0; i < 20; i++) void q.ask();
    await q.grant(0); // a quick one: its window does not stand
    await q.grant(110); // waited 110 ms: a new window
    await q.grant(60);
    expect(q.backlog.standing()).toBe(false); // that window is not over
    await q.grant(60); // 120 ms into the window: it rolls, its shortest wait 110 ms
    expect(q.backlog.standing()).toBe(true);
    // Stays so while the queue is long, window after window.
    for (let i = 0; i < 5; i++) await q.grant(60);
    expect(q.backlog.standing()).toBe(true);
  });

  it("one quick connection in a window clears it, as does an empty queue", async () => {
    const q = setup(50);
    for (let i = 0; i < 3; i++) void q.ask();
    await q.grant(110);
    await q.grant(110);
    expect(q.backlog.standing()).toBe(true);
    void q.ask(); // asked now
    void q.ask();
    await q.grant(0); // the third of the first three
    await q.grant(0); // waited 0 ms
    q.advance(100);
    expect(q.backlog.standing()).toBe(false); // the last window's shortest wait was 0 ms

    const empty = setup(50);
    for (let i = 0; i < 3; i++) void empty.ask();
    await empty.grant(110);
    await empty.grant(110);
    expect(empty.backlog.standing()).toBe(true);
    await empty.grant(0);
    expect(empty.backlog.standing()).toBe(false); // nobody waits: nothing to shed for
    void empty.ask();
    expect(empty.backlog.standing()).toBe(false); // and the next queue is judged on its own waits
  });

  it("sheds only while more wait than the connections handed out in the target's time", async () => {
    const q = setup(50);
    for (let i = 0; i < 30; i++) void q.ask();
    q.advance(100);
    for (let i = 0; i < 10; i++) await q.grant(i === 0 ? 0 : 10); // a window: 10 in 100 ms, each after 100 ms or more
    await q.grant(10); // it rolls: 1 connection every 10 ms
    // 19 wait, and 50 ms hands out 5: the queue is longer than the target.
    expect(q.backlog.standing()).toBe(true);
    for (let i = 0; i < 14; i++) await q.grant(0);
    expect(q.backlog.standing()).toBe(true); // 5 wait: 50 ms of work
    await q.grant(0);
    expect(q.backlog.standing()).toBe(false); // 4: less; admitted, they keep every connection busy
  });

  it("a window in which nothing got a connection keeps the last one's verdict (a hung database is the deadlines' case)", async () => {
    const q = setup(50);
    for (let i = 0; i < 4; i++) void q.ask();
    await q.grant(0);
    q.advance(1_000);
    expect(q.backlog.standing()).toBe(false);
  });

  it("target 0: never standing", async () => {
    const q = setup(0);
    for (let i = 0; i < 6; i++) void q.ask();
    for (let i = 0; i < 4; i++) await q.grant(500);
    expect(q.backlog.standing()).toBe(false);
  });

  it("a failed wait counts too, and leaves the queue", async () => {
    const now = 0;
    const backlog = new Backlog(50, () => now);
    await expect(backlog.wait(() => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(backlog.standing()).toBe(false);
  });
});
