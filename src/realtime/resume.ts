import type { PositionedRow } from "./orderedPublisher";

/**
 * A resumed subscription: first the rows that changed after the client's position (read after
 * the live subscription was made, so nothing committed in between is missed), then the live
 * changes, less any that the replay already gave in the same or a later state (a change can be
 * both in the replay and in the live feed, and a live row loaded before the replay ran can be
 * older than the replayed one).
 */
export function replayThenLive<T extends PositionedRow>(
  replay: readonly T[],
  live: AsyncIterableIterator<T>,
): AsyncIterableIterator<T> {
  const queue = [...replay];
  const replayed = new Map<string, bigint>(replay.map((row) => [row.id, BigInt(row.position)]));
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      const first = queue.shift();
      if (first) return { value: first, done: false };
      for (;;) {
        const step = await live.next();
        if (step.done) return step;
        const seen = replayed.get(step.value.id);
        if (seen !== undefined && BigInt(step.value.position) <= seen) continue;
        replayed.delete(step.value.id);
        return step;
      }
    },
    async return() {
      queue.length = 0;
      return (await live.return?.()) ?? { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * The live subscription, after the rows `missed()` reads (none: live alone). If reading them
 * fails, the live subscription is ended and the error thrown (the subscription fails).
 */
export async function resumed<T extends PositionedRow>(
  live: AsyncIterableIterator<T>,
  missed: () => Promise<readonly T[]>,
): Promise<AsyncIterableIterator<T>> {
  try {
    const replay = await missed();
    return replay.length === 0 ? live : replayThenLive(replay, live);
  } catch (error) {
    await live.return?.();
    throw error;
  }
}
