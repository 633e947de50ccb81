import { describe, expect, it } from "vitest";
import { uuid } from "../../src/shared/clock";
import { isUuid } from "../../src/shared/ids";

/** The Unix milliseconds in a version-7 UUID's first 48 bits. */
const msOf = (id: string) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe("uuid (the ids commands make)", () => {
  it("is a version-7 UUID with the RFC variant, which the API accepts as an id", () => {
    for (let i = 0; i < 1_000; i++) {
      const id = uuid();
      expect(isUuid(id)).toBe(true);
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });

  it("carries the time it was made, so ids made later sort after those made earlier", async () => {
    const before = Date.now();
    const first = uuid();
    const after = Date.now();
    expect(msOf(first)).toBeGreaterThanOrEqual(before);
    expect(msOf(first)).toBeLessThanOrEqual(after);

    const start = Date.now();
    while (Date.now() === start); // the next millisecond, without a timer
    const later = Array.from({ length: 100 }, () => uuid());
    for (const id of later) expect(id > first).toBe(true);
  });

  it("is random within a millisecond: no two of 100,000 are equal", () => {
    const ids = new Set(Array.from({ length: 100_000 }, () => uuid()));
    expect(ids.size).toBe(100_000);
  });
});
