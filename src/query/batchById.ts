import { isUuid } from "../shared/ids";

interface Waiter<Row> {
  resolve(row: Row | null): void;
  reject(error: unknown): void;
}

/**
 * A by-id read that coalesces the ids asked for in the same tick into one statement. Mutations
 * waiting for read-your-writes all wake when one projector batch lands (one read_changed), and
 * each reads its row back: one query for all of them instead of one each. The statement runs
 * after every caller of the tick has asked, so each sees at least what was there when it asked.
 * An id that is not a UUID is not in any table: null, without a query.
 */
export function batchById<Row extends { id: string }>(
  loadMany: (ids: string[]) => Promise<Row[]>,
): (id: string) => Promise<Row | null> {
  let pending: Map<string, Waiter<Row>[]> | undefined;

  const flush = (batch: Map<string, Waiter<Row>[]>) => {
    loadMany([...batch.keys()]).then(
      (rows) => {
        const byId = new Map(rows.map((row) => [row.id.toLowerCase(), row]));
        for (const [id, waiters] of batch) for (const w of waiters) w.resolve(byId.get(id) ?? null);
      },
      (error: unknown) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(error);
      },
    );
  };

  return (id) => {
    const key = id.toLowerCase();
    if (!isUuid(key)) return Promise.resolve(null);
    if (!pending) {
      const batch = (pending = new Map());
      process.nextTick(() => {
        pending = undefined;
        flush(batch);
      });
    }
    const batch = pending;
    return new Promise<Row | null>((resolve, reject) => {
      const waiters = batch.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else batch.set(key, [{ resolve, reject }]);
    });
  };
}
