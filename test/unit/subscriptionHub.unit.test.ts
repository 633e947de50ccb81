import { describe, expect, it } from "vitest";
import { Topic } from "../../src/realtime/subscriptionHub";

interface Row {
  id: string;
  v: number;
}

/** What a subscriber that has not been reading finds queued, taken now. */
async function drain(sub: AsyncIterableIterator<Row>, count: number): Promise<string[]> {
  const taken: string[] = [];
  for (let i = 0; i < count; i++) {
    const { value } = await sub.next();
    taken.push(`${value.id}:${value.v}`);
  }
  return taken;
}

describe("a subscriber that reads slower than rows change", () => {
  it("gets each row's newest state once, in the order the states were published", async () => {
    const topic = new Topic<Row>();
    const sub = topic.subscribe(undefined);
    topic.publish("a", { id: "a", v: 1 });
    topic.publish("b", { id: "b", v: 2 });
    topic.publish("a", { id: "a", v: 3 }); // a's older state gives way, and a goes after b
    topic.publish("c", { id: "c", v: 4 });
    expect(await drain(sub, 3)).toEqual(["b:2", "a:3", "c:4"]);
    // nothing else was queued
    const next = sub.next();
    topic.publish("d", { id: "d", v: 5 });
    expect((await next).value).toEqual({ id: "d", v: 5 });
    await sub.return?.();
  });

  it("keeps at most 1,000 different rows, dropping the oldest", async () => {
    const topic = new Topic<Row>();
    const sub = topic.subscribe(undefined);
    for (let i = 0; i < 1001; i++) topic.publish(`r${i}`, { id: `r${i}`, v: i });
    const taken = await drain(sub, 1000);
    expect(taken[0]).toBe("r1:1"); // r0 went
    expect(taken.at(-1)).toBe("r1000:1000");
    await sub.return?.();
  });
});
