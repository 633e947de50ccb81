import type { Database, Listener } from "../db/database";
import type { Logger } from "../logger";
import { comparePositions, LOG_START, type LogPosition } from "../shared/events";
import { listCheckpoints, READ_CHANGED, type ReadChangedMessage } from "../projection/checkpoints";
import type { CatalogQueries, ProductRow } from "../query/catalog.queries";
import type { ReadChangeListener } from "../query/catalogCache";
import type { OrderQueries, OrderRow } from "../query/orders.queries";
import { Topic } from "./subscriptionHub";

const REPUBLISH_MARGIN_MS = 5_000;

interface Waiter {
  target: LogPosition;
  resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * Every API instance LISTENs to read_changed. From it, the instance knows each projection's
 * checkpoint without asking the database (read-your-writes waits on it) and which rows changed
 * (loaded once from the read tables, then fanned out to the subscribers of this instance).
 */
export class ChangeFeed {
  readonly products = new Topic<ProductRow>();
  readonly orders = new Topic<OrderRow>();
  private readonly checkpoints = new Map<string, LogPosition>();
  /** Projections halted at a poison event (FAILED): nothing waits for them until they move again. */
  private readonly halted = new Set<string>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Last notification received; on reconnect, rows changed since shortly before are pushed again. */
  private lastMessageAt = new Date();
  private lostAt: Date | undefined;
  private connection: Listener | undefined;

  constructor(
    private readonly db: Database,
    private readonly catalog: Pick<CatalogQueries, "byIds" | "changedSince">,
    private readonly ordersQueries: OrderQueries,
    private readonly logger: Logger,
    /** Told of every message before its checkpoint advances (a result cache drops what changed). */
    private readonly listener?: ReadChangeListener,
  ) {}

  async start(): Promise<void> {
    this.connection = await this.db.listen([READ_CHANGED], {
      onNotify: (_channel, payload) => this.onMessage(payload),
      // Notifications sent while the connection was down are lost: re-read the checkpoints and
      // push subscribers the current rows of what may have changed meanwhile.
      onReconnect: () => {
        this.listener?.listening();
        void this.refreshCheckpoints().then(() => this.republish());
      },
      onLost: () => {
        this.lostAt ??= new Date();
        this.listener?.lost();
      },
    });
    this.listener?.listening();
    await this.refreshCheckpoints();
  }

  async stop(): Promise<void> {
    this.listener?.lost();
    await this.connection?.close();
    this.products.closeAll();
    this.orders.closeAll();
    for (const set of this.waiters.values()) for (const w of set) this.settle(w, false);
  }

  get subscriberCount(): number {
    return this.products.size + this.orders.size;
  }

  checkpoint(projection: string): LogPosition {
    return this.checkpoints.get(projection) ?? LOG_START;
  }

  /**
   * Resolves true once the projection has applied `target`; false after timeoutMs, or at once
   * while it is halted at a poison event (it will not get there before an operator's retry). No polling.
   */
  waitFor(projection: string, target: LogPosition, timeoutMs: number): Promise<boolean> {
    if (comparePositions(this.checkpoint(projection), target) >= 0) return Promise.resolve(true);
    if (timeoutMs <= 0 || this.halted.has(projection)) return Promise.resolve(false);
    return new Promise((resolve) => {
      let set = this.waiters.get(projection);
      if (!set) this.waiters.set(projection, (set = new Set()));
      const waiter: Waiter = {
        target,
        resolve,
        timer: setTimeout(() => this.settle(waiter, false, projection), timeoutMs),
      };
      set.add(waiter);
    });
  }

  private settle(waiter: Waiter, reached: boolean, projection?: string): void {
    clearTimeout(waiter.timer);
    if (projection) this.waiters.get(projection)?.delete(waiter);
    waiter.resolve(reached);
  }

  private advance(projection: string, at: LogPosition): void {
    const current = this.checkpoints.get(projection);
    if (current && comparePositions(current, at) >= 0) return;
    this.checkpoints.set(projection, at);
    const set = this.waiters.get(projection);
    if (!set) return;
    for (const waiter of set) {
      if (comparePositions(at, waiter.target) >= 0) this.settle(waiter, true, projection);
    }
  }

  /** A projection halted: its waiters are answered now. */
  private halt(projection: string): void {
    this.halted.add(projection);
    for (const waiter of this.waiters.get(projection) ?? []) this.settle(waiter, false, projection);
  }

  private async refreshCheckpoints(): Promise<void> {
    try {
      for (const c of await listCheckpoints(this.db.sql)) {
        this.advance(c.name, c);
        if (c.status === "FAILED") this.halt(c.name);
        else this.halted.delete(c.name);
      }
    } catch (error) {
      this.logger.warn({ err: error }, "change feed: could not read checkpoints");
    }
  }

  /** After a LISTEN outage: rows a subscriber cares about that may have changed unseen. */
  private async republish(): Promise<void> {
    // Rows carry their event's time, taken before its commit: look back a margin further.
    const since = new Date(this.lastMessageAt.getTime() - REPUBLISH_MARGIN_MS);
    this.logger.warn(
      { since, lostAt: this.lostAt },
      "change feed: LISTEN re-established; pushing rows changed meanwhile",
    );
    this.lostAt = undefined;
    try {
      const products = this.products.subscribedKeys();
      const productRows = products.all
        ? await this.catalog.changedSince(since)
        : await this.catalog.byIds(products.keys);
      for (const row of productRows) if (products.all || row.updatedAt >= since) this.products.publish(row.id, row);
      const orders = this.orders.subscribedKeys();
      for (const row of await this.ordersQueries.byIds(orders.keys))
        if (row.updatedAt >= since) this.orders.publish(row.id, row);
    } catch (error) {
      this.logger.warn({ err: error }, "change feed: could not push the rows changed during the outage");
    }
  }

  private onMessage(payload: string): void {
    this.lastMessageAt = new Date();
    let message: ReadChangedMessage;
    try {
      message = JSON.parse(payload) as ReadChangedMessage;
    } catch {
      return;
    }
    this.listener?.changed(message);
    this.advance(message.projection, { txId: BigInt(message.txId), position: BigInt(message.position) });
    if (message.halted) this.halt(message.projection);
    else this.halted.delete(message.projection);
    if (message.ids.length === 0) return;
    if (message.table === "products") void this.publishProducts(message.ids);
    else if (message.table === "orders") void this.publishOrders(message.ids);
  }

  private async publishProducts(ids: string[]): Promise<void> {
    const wanted = ids.filter((id) => this.products.hasSubscribers(id));
    if (wanted.length === 0) return;
    try {
      for (const row of await this.catalog.byIds(wanted)) this.products.publish(row.id, row);
    } catch (error) {
      this.logger.warn({ err: error }, "change feed: could not load changed products");
    }
  }

  private async publishOrders(ids: string[]): Promise<void> {
    const wanted = ids.filter((id) => this.orders.hasSubscribers(id));
    if (wanted.length === 0) return;
    try {
      for (const row of await this.ordersQueries.byIds(wanted)) this.orders.publish(row.id, row);
    } catch (error) {
      this.logger.warn({ err: error }, "change feed: could not load changed orders");
    }
  }
}
