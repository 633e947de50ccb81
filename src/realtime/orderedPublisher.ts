import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../logger";
import type { Topic } from "./subscriptionHub";

/** A read row as pushed: its id, and its `position` (rowPosition.ts: a decimal that orders rows as the log does, then by id). */
export interface PositionedRow {
  id: string;
  position: string;
}

/** A failed load is tried again after this pause, with what was named meanwhile, this many times in a row at most. */
const RETRY = { pauseMs: 500, attempts: 3 };

interface Loaded<Row> {
  row: Row;
  at: bigint;
}

/**
 * Loads the rows that read_changed messages name and publishes them on a topic, in the log's
 * order: a subscriber never gets a row older than one it already got, and on a subscription to
 * several rows it gets them in the order the log changed them, so that the position of the last
 * row it received is a place to resume from (rows one event changed go in id order, as their positions do).
 *
 * Loads run one at a time (ids named meanwhile are loaded together, next), so a later load never
 * answers before an earlier one. A load can see rows that a later batch changed already; those
 * are held until a message's checkpoint reaches them (the later batch's own, which names them),
 * then published with that load's rows, so a row that changes in every batch is still pushed,
 * one batch behind.
 */
export class OrderedPublisher<Row extends PositionedRow> {
  private readonly pending = new Set<string>();
  /** Rows loaded past the checkpoint their load was asked for, by id: the newest state of each. */
  private readonly held = new Map<string, Loaded<Row>>();
  /** The last checkpoint named, as a row position. */
  private upTo = 0n;
  private draining = false;
  private paused = false;
  private closed = false;

  constructor(
    private readonly topic: Topic<Row>,
    private readonly load: (ids: string[]) => Promise<Row[]>,
    private readonly logger: Logger,
    private readonly what: string,
    private readonly retry = RETRY,
  ) {}

  /** Rows `ids` changed, as of the checkpoint `upTo` (a row position). */
  changed(ids: readonly string[], upTo: bigint): void {
    if (this.closed) return;
    for (const id of ids) if (this.topic.hasSubscribers(id)) this.pending.add(id);
    if (upTo > this.upTo) this.upTo = upTo;
    this.start();
  }

  /** Collects what is named, loading nothing, until resume(): what is named meanwhile is loaded as one. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.start();
  }

  /** Loads nothing more (a load under way ends without retrying). */
  close(): void {
    this.closed = true;
    this.pending.clear();
    this.held.clear();
  }

  private start(): void {
    if (this.pending.size === 0 || this.draining || this.paused || this.closed) return;
    this.draining = true;
    // After the messages that arrived with this one (a batch's are chunked): one load for all of them.
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    let failures = 0;
    try {
      while (this.pending.size > 0 && !this.paused && !this.closed) {
        const ids = [...this.pending];
        this.pending.clear();
        const upTo = this.upTo;
        let loaded: Row[];
        try {
          loaded = await this.load(ids);
          failures = 0;
        } catch (error) {
          if (this.closed) return;
          // A statement cancelled or a connection lost for a moment: those rows again, shortly.
          if (++failures < this.retry.attempts) {
            this.logger.warn({ err: error }, `change feed: could not load changed ${this.what}; trying again`);
            for (const id of ids) this.pending.add(id);
            await delay(this.retry.pauseMs);
          } else {
            this.logger.error({ err: error, ids: ids.length }, `change feed: could not load changed ${this.what}`);
            failures = 0;
          }
          continue;
        }
        this.publish(loaded, upTo);
      }
    } finally {
      this.draining = false;
      this.start(); // named while paused, then resumed as this drain ended
    }
  }

  /** The rows held and loaded up to `upTo`, each row's newest, in position order; those past it held for later. */
  private publish(loaded: Row[], upTo: bigint): void {
    const ready = new Map<string, Loaded<Row>>();
    for (const [id, held] of this.held) {
      if (held.at > upTo) continue;
      ready.set(id, held);
      this.held.delete(id);
    }
    for (const row of loaded) {
      const at = BigInt(row.position);
      const newer = (than: Loaded<Row> | undefined) => than === undefined || at > than.at;
      if (at <= upTo) {
        if (newer(ready.get(row.id))) ready.set(row.id, { row, at });
      } else if (newer(this.held.get(row.id))) this.held.set(row.id, { row, at });
    }
    const ordered = [...ready.values()].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    for (const { row } of ordered) this.topic.publish(row.id, row);
  }
}
