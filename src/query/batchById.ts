import { isUuid } from "../shared/ids";

interface Waiter<Row> {
  resolve(row: Row | null): void;
  reject(error: unknown): void;
}

/**
 * A by-id read that coalesces the ids asked for in the same turn of the event loop into one
 * statement. Requests that arrived together (one poll of the sockets) reach their resolvers
 * before the loop turns, and mutations waiting for read-your-writes all wake when one projector
 * batch lands (one read_changed): each reads its row, and one statement serves them all instead
 * of one each, at no cost in latency (the statement leaves as soon as the I/O of this turn has
 * been handled, before the loop waits again). It runs after every caller of the turn has asked,
 * so each sees at least what was there when it asked. An id that is not a UUID is not in any
 * table: null, without a query.
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
      setImmediate(() => {
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
