import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../logger";
import type { Topic } from "./subscriptionHub";

/** A read row as pushed: its id, and its `position` (rowPosition.ts: a decimal that orders rows as the log does). */
export interface PositionedRow {
  id: string;
  position: string;
}

/**
 * Loads the rows that read_changed messages name and publishes them on a topic, in the log's
 * order: a subscriber never gets a row older than one it already got, and on a subscription to
 * several rows, never a row before one the log changed earlier, so that the position of the last
 * row it received is a safe place to resume from.
 *
 * Loads run one at a time (ids named meanwhile are loaded together, next), so a later load never
 * answers before an earlier one. A load can see rows that a later batch changed already; it
 * publishes only those up to the last checkpoint it was asked for, in position order, and leaves
 * the others to the later batch's own message, which names them.
 */
/** A failed load is tried again after this pause, with what was named meanwhile, this many times in a row at most. */
const RETRY = { pauseMs: 500, attempts: 3 };

export class OrderedPublisher<Row extends PositionedRow> {
  private readonly pending = new Set<string>();
  /** The last checkpoint named, as a row position. */
  private upTo = 0n;
  private draining = false;

  constructor(
    private readonly topic: Topic<Row>,
    private readonly load: (ids: string[]) => Promise<Row[]>,
    private readonly logger: Logger,
    private readonly what: string,
    private readonly retry = RETRY,
  ) {}

  /** Rows `ids` changed, as of the checkpoint `upTo` (a row position). */
  changed(ids: readonly string[], upTo: bigint): void {
    for (const id of ids) if (this.topic.hasSubscribers(id)) this.pending.add(id);
    if (upTo > this.upTo) this.upTo = upTo;
    if (this.pending.size === 0 || this.draining) return;
    this.draining = true;
    // After the messages that arrived with this one (a batch's are chunked): one load for all of them.
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    let failures = 0;
    try {
      while (this.pending.size > 0) {
        const ids = [...this.pending];
        this.pending.clear();
        const upTo = this.upTo;
        try {
          const rows = (await this.load(ids))
            .map((row) => ({ row, at: BigInt(row.position) }))
            .filter(({ at }) => at <= upTo)
            .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
          failures = 0;
          for (const { row } of rows) this.topic.publish(row.id, row);
        } catch (error) {
          // A statement cancelled or a connection lost for a moment: those rows again, shortly.
          if (++failures < this.retry.attempts) {
            this.logger.warn({ err: error }, `change feed: could not load changed ${this.what}; trying again`);
            for (const id of ids) this.pending.add(id);
            await delay(this.retry.pauseMs);
          } else {
            this.logger.error(
              { err: error, ids: ids.length },
              `change feed: could not load changed ${this.what}; given up`,
            );
            failures = 0;
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
