import type { Database } from "../db/database";
import { SessionLease } from "../db/sessionLease";
import { sql } from "../db/sql";
import type { Logger } from "../logger";
import { systemActor } from "../shared/auth";
import type { Clock } from "../shared/clock";
import { AppError, isConnectionError } from "../shared/errors";
import type { CommandBus } from "../write/commandBus";
import { expireOrder } from "../write/orders/commands/expireOrder";

/** Advisory lock namespace (hashtext("order-expiry")): the dispatcher's lease, in the write database. */
export const EXPIRY_LEASE = 72_711;

/** Expiries dispatched at once. */
const CONCURRENCY = 8;

/** The longest the dispatcher sleeps: an order placed meanwhile is due no sooner (the timeout is at least 1 s). */
const MAX_SLEEP_MS = 1000;

/**
 * The earliest deadline of an unpaid order, read every look: the first entry of the deadlines'
 * index. Not min(expires_at), which the planner computes by reading every entry (a heap fetch
 * each, every second) when the statistics hold fewer unpaid orders than there are: a table
 * analyzed before most of them were placed.
 */
export const NEXT_DEADLINE = sql<{ at: Date }>`
  SELECT expires_at AS at FROM "write"."orders" WHERE status = 'PLACED' AND expires_at IS NOT NULL
   ORDER BY expires_at LIMIT 1`;

export interface OrderExpiryObserver {
  onExpired?(orders: number): void;
  onExpiryLeadership?(leading: boolean): void;
}

export interface OrderExpiryOptions {
  /** Orders read per look (each expired by a command of its own, several at a time). */
  batchSize: number;
  instanceId: string;
  logger: Logger;
  observer?: OrderExpiryObserver;
}

/** The payment deadlines that have passed with their orders still PLACED. */
export interface DueDeadlines {
  orders: number;
  /** Seconds since the oldest of them passed; 0 when none. */
  oldestSeconds: number;
}

interface DueOrder {
  id: string;
  /** The OrderPlaced event, which set the deadline: the expiry's correlation and causation. */
  correlationId: string;
  placedPosition: string;
}

/**
 * The order expiry, a process manager: events and time in, a command out. The schedule is the
 * write model itself: placeOrder writes an order's deadline (`write.orders.expires_at`) in the
 * transaction of its OrderPlaced, and every later event of the order clears it in its own.
 *
 * One instance dispatches, the holder of a lease in the write database (the others try it every
 * second, so a standby takes over within a second or two of the leader's death). The leader
 * sleeps until the next deadline (a second at most), then dispatches expireOrder through the
 * command bus for every order that is due (8 at a time), as the system, with the correlation id of the
 * OrderPlaced event and its position as the causation. At start-up it expires what fell due
 * while no instance ran.
 *
 * Exactly once does not rest on the lease: the command appends only to a PLACED order past its
 * deadline, at the stream version it loaded, with an idempotency key of the order. A second
 * dispatch (a lease changing hands mid-command, a crash after the commit) answers as the first,
 * and a payOrder racing it loses on the stream version (or, past the deadline, is refused).
 */
export class OrderExpiry {
  private readonly lease: SessionLease;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly db: Database,
    private readonly bus: CommandBus,
    private readonly clock: Clock,
    private readonly options: OrderExpiryOptions,
  ) {
    this.lease = new SessionLease(db, EXPIRY_LEASE, "order-expiry", options.instanceId, () => {
      options.logger.warn("order expiry: lost the session of its lease; stops dispatching");
      options.observer?.onExpiryLeadership?.(false);
    });
  }

  get isLeader(): boolean {
    return this.lease.held;
  }

  start(): void {
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wakeUp?.();
    await this.loop;
    const leading = this.lease.held;
    await this.lease.release();
    if (leading) this.options.observer?.onExpiryLeadership?.(false);
  }

  /** What is due now, as the write model has it (for /metrics, on any instance with the write database). */
  async due(): Promise<DueDeadlines> {
    const now = this.clock.now();
    const [row] = await this.db.sql.query(sql<{ orders: number; oldest: Date | null }>`
      SELECT count(*)::int AS orders, min(expires_at) AS oldest
        FROM "write"."orders" WHERE status = 'PLACED' AND expires_at <= ${now}::timestamptz`);
    const oldest = row?.oldest ? new Date(row.oldest) : null;
    return {
      orders: row?.orders ?? 0,
      oldestSeconds: oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0,
    };
  }

  private async run(): Promise<void> {
    let backoffMs = 100;
    while (!this.stopped) {
      let sleepMs = MAX_SLEEP_MS;
      try {
        if (await this.tryLead()) {
          sleepMs = await this.expireDue();
          backoffMs = 100;
        }
      } catch (error) {
        this.options.logger.warn({ err: error }, "order expiry: look failed; trying again");
        sleepMs = backoffMs;
        backoffMs = Math.min(backoffMs * 2, MAX_SLEEP_MS);
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        this.timer = setTimeout(resolve, sleepMs);
      });
      this.wakeUp = undefined;
    }
  }

  private async tryLead(): Promise<boolean> {
    if (this.lease.held) return true;
    if (!(await this.lease.tryAcquire())) return false;
    this.options.logger.info("order expiry: leads; dispatching the payment deadlines");
    this.options.observer?.onExpiryLeadership?.(true);
    return true;
  }

  /** Expires every order due now, batch by batch; answers how long to sleep until the next deadline. */
  private async expireDue(): Promise<number> {
    for (;;) {
      const now = this.clock.now();
      const due = await this.db.sql.query(sql<DueOrder>`
        SELECT o.id::text AS id, e.metadata->>'correlationId' AS "correlationId",
               e.position::text AS "placedPosition"
          FROM "write"."orders" o
          JOIN "write"."events" e ON e.stream_id = o.id AND e.stream_version = 1
         WHERE o.status = 'PLACED' AND o.expires_at <= ${now}::timestamptz
         ORDER BY o.expires_at
         LIMIT ${this.options.batchSize}::int`);
      // Several at a time: under load each command waits its turn for a connection, and one
      // after another the expiries would fall behind the orders (each order is its own stream;
      // orders sharing a product queue on its stock row, in product-id order, without deadlock).
      let expired = 0;
      let settled = 0;
      let next = 0;
      let lost: unknown;
      const worker = async () => {
        while (next < due.length && lost === undefined && !this.stopped && this.lease.held) {
          const outcome = await this.expire(due[next++]!).catch((error: unknown) => {
            lost ??= error;
            return "failed" as const;
          });
          if (outcome === "expired") expired += 1;
          if (outcome !== "failed") settled += 1;
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, due.length) }, worker));
      if (expired > 0) this.options.observer?.onExpired?.(expired);
      if (lost !== undefined) throw lost;
      if (this.stopped || !this.lease.held) return 0;
      // A batch that settled nothing (every order failing) is tried again at the next look.
      if (due.length < this.options.batchSize || settled === 0) break;
    }
    const [next] = await this.db.sql.query(NEXT_DEADLINE);
    const untilNext = next ? new Date(next.at).getTime() - this.clock.now().getTime() : MAX_SLEEP_MS;
    return Math.min(MAX_SLEEP_MS, Math.max(0, untilNext));
  }

  /**
   * Dispatches one expiry: "skipped" when the order was no longer the expiry's (paid or
   * cancelled meanwhile), "failed" when the command failed otherwise (logged; the order is tried
   * again at the next look, and the others are not held up by it). A lost database connection
   * ends the look.
   */
  private async expire(order: DueOrder): Promise<"expired" | "skipped" | "failed"> {
    try {
      await this.bus.dispatch(expireOrder, { orderId: order.id }, systemActor, {
        correlationId: order.correlationId,
        causationId: order.placedPosition,
      });
      return "expired";
    } catch (error) {
      if (error instanceof AppError && error.code === "INVALID_STATE") return "skipped";
      if (isConnectionError(error)) throw error;
      this.options.logger.error({ err: error, orderId: order.id }, "order expiry: could not expire an order");
      return "failed";
    }
  }
}
