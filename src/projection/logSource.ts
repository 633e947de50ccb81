import type { Database, Listener } from "../db/database";
import { sql } from "../db/sql";
import type { LogPosition, RecordedEvent } from "../shared/events";
import {
  backlogAfter,
  foreignTransactions,
  hasHeldBackEvents,
  readEventsAfter,
  type Backlog,
  type ForeignTransactions,
} from "../write/eventLog/eventLog";

export const EVENTS_APPENDED = "events_appended";

/** Where a projector gets its events: in the log's reading order, after a position. */
export interface EventSource {
  readAfter(after: LogPosition, limit: number): Promise<RecordedEvent[]>;
  /** Calls wake whenever there may be events to read. */
  watch(wake: () => void, maxDelayMs: number): Promise<SourceWatch>;
  /** How far a reader at `after` is behind: what the projector knows of the source, for the lag figures. */
  backlogAfter(after: LogPosition): Promise<Backlog>;
  /**
   * For a reader that stops once it has read what it can (catchUp): when events are held back by
   * transactions of other databases on the server, leaves those out. True when that frees every
   * committed event, so that reading again reaches them.
   */
  releaseHeldBack?(): Promise<boolean>;
}

export interface SourceWatch {
  /** The projector ran and has nothing queued: look again soon if the source still holds events back. */
  idle(progressed: boolean): Promise<void>;
  close(): Promise<void>;
}

/** Wakes the projector leader, wherever it runs (after an operator changed a checkpoint). */
export async function wakeProjectors(db: Database["sql"]): Promise<void> {
  await db.query(sql`SELECT pg_notify(${EVENTS_APPENDED}, '')`);
}

/** How often, at most, a reader held back looks for other databases' transactions (pg_stat_activity). */
const FOREIGN_LOOK_MS = 100;

/** The event log of the write database, read gap-safely (see eventLog.ts). */
export function logSource(db: Database): EventSource {
  // Other databases' transactions, left out of the horizon: looked for only when the reader is
  // held back (not on every read: pg_stat_activity copies every backend's status), at most every
  // FOREIGN_LOOK_MS. A list of any age is safe to use (a transaction id is never another's).
  let foreign: ForeignTransactions = [];
  let foreignAt = 0;
  /** True when a look found a transaction the reader did not leave out yet. */
  const lookForForeign = async (): Promise<boolean> => {
    if (Date.now() - foreignAt < FOREIGN_LOOK_MS) return false;
    foreignAt = Date.now();
    const found = await foreignTransactions(db.sql);
    const added = found.some((xid) => !foreign.includes(xid));
    foreign = found;
    return added;
  };
  return {
    readAfter: (after, limit) => readEventsAfter(db.sql, after, limit, foreign),
    backlogAfter: (after) => backlogAfter(db.sql, after),

    async releaseHeldBack() {
      if (!(await hasHeldBackEvents(db.sql, foreign))) return false;
      foreignAt = 0; // look now
      await lookForForeign();
      // Still held back: by a transaction of this database, which a reader must wait for.
      return !(await hasHeldBackEvents(db.sql, foreign));
    },

    async watch(wake, maxDelayMs) {
      const listener: Listener = await db.listen([EVENTS_APPENDED], { onNotify: wake, onReconnect: wake });
      // Committed events that an older open transaction still holds back are read only once it
      // ends; if it never NOTIFYs (an operator's session, a rebuild, any transaction that appends
      // no events), nothing would wake us before the next poll. So look again soon,
      // backing off from 5 ms to maxDelayMs while no progress is made.
      let timer: NodeJS.Timeout | undefined;
      let delayMs = 0;
      let closed = false;
      return {
        async idle(progressed) {
          clearTimeout(timer);
          timer = undefined;
          if (closed || !(await hasHeldBackEvents(db.sql, foreign))) {
            delayMs = 0;
            return;
          }
          if (closed) return;
          // Held back by another database's transaction, it reads on at once.
          if (await lookForForeign()) {
            wake();
            return;
          }
          delayMs = progressed || delayMs === 0 ? 5 : Math.min(delayMs * 2, maxDelayMs);
          timer = setTimeout(() => {
            timer = undefined;
            wake();
          }, delayMs);
          timer.unref();
        },
        async close() {
          closed = true;
          clearTimeout(timer);
          await listener.close();
        },
      };
    },
  };
}
