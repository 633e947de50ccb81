import type { Database, Listener } from "../db/database";
import type { Logger } from "../logger";
import { comparePositions, LOG_START, type LogPosition } from "../shared/events";
import { listCheckpoints, READ_CHANGED, type ReadChangedMessage } from "../projection/checkpoints";
import type { CatalogQueries, ProductRow } from "../query/catalog.queries";
import { CATALOG_PROJECTION, ORDERS_PROJECTION, ORDERS_TABLE, PRODUCTS_TABLE } from "../projection/names";
import type { ReadChangeListener } from "../query/catalogCache";
import type { OrderQueries, OrderRow } from "../query/orders.queries";
import { encodeRowPosition } from "../query/rowPosition";
import { OrderedPublisher, type PositionedRow } from "./orderedPublisher";
import { Topic } from "./subscriptionHub";

/**
 * After an outage, a subscriber to every product is caught up with the rows changed last, this
 * many at most: its queue keeps no more (subscriptionHub.ts).
 */
const CATCH_UP_ALL = 1000;

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
  private readonly productsOut: OrderedPublisher<ProductRow>;
  private readonly ordersOut: OrderedPublisher<OrderRow>;
  /** The checkpoints as they were when LISTEN was lost: what changed after them may not have been pushed. */
  private atLoss: Map<string, LogPosition> | undefined;
  private connection: Listener | undefined;

  constructor(
    private readonly db: Database,
    private readonly catalog: Pick<CatalogQueries, "byIds" | "changedAfter">,
    private readonly ordersQueries: OrderQueries,
    private readonly logger: Logger,
    /** Told of every message before its checkpoint advances (a result cache drops what changed). */
    private readonly listener?: ReadChangeListener,
  ) {
    this.productsOut = new OrderedPublisher(this.products, (ids) => catalog.byIds(ids), logger, "products");
    this.ordersOut = new OrderedPublisher(this.orders, (ids) => ordersQueries.byIds(ids), logger, "orders");
  }

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
        this.atLoss ??= new Map(this.checkpoints);
        // What is named from now on waits for the catch-up, to be loaded in one go with it, in order.
        this.productsOut.pause();
        this.ordersOut.pause();
        this.listener?.lost();
      },
    });
    this.listener?.listening();
    await this.refreshCheckpoints();
  }

  async stop(): Promise<void> {
    this.listener?.lost();
    await this.connection?.close();
    this.productsOut.close();
    this.ordersOut.close();
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

  /**
   * After a LISTEN outage: the rows subscribed to that changed after the checkpoints of the
   * moment it was lost, pushed as any change, in the log's order with what was named since the
   * connection came back. They are applied already, so they are pushed up to the last of them,
   * whether or not the checkpoints could be read again.
   */
  private async republish(): Promise<void> {
    const atLoss = this.atLoss ?? new Map<string, LogPosition>();
    this.atLoss = undefined;
    this.logger.warn("change feed: LISTEN re-established; pushing rows changed meanwhile");
    try {
      const products = this.products.subscribedKeys();
      const fromCatalog = atLoss.get(CATALOG_PROJECTION) ?? LOG_START;
      const productRows = products.all
        ? await this.catalog.changedAfter(undefined, fromCatalog, CATCH_UP_ALL, true)
        : products.keys.length > 0
          ? await this.catalog.changedAfter(products.keys, fromCatalog, products.keys.length)
          : [];
      catchUp(this.productsOut, productRows);
      const fromOrders = BigInt(encodeRowPosition(atLoss.get(ORDERS_PROJECTION) ?? LOG_START));
      const orderKeys = this.orders.subscribedKeys().keys;
      const orderRows = orderKeys.length > 0 ? await this.ordersQueries.byIds(orderKeys) : [];
      catchUp(
        this.ordersOut,
        orderRows.filter((row) => BigInt(row.position) > fromOrders),
      );
    } catch (error) {
      this.logger.warn({ err: error }, "change feed: could not push the rows changed during the outage");
    } finally {
      this.productsOut.resume();
      this.ordersOut.resume();
    }
  }

  private onMessage(payload: string): void {
    let message: ReadChangedMessage;
    try {
      message = JSON.parse(payload) as ReadChangedMessage;
    } catch {
      return;
    }
    this.listener?.changed(message);
    const at = { txId: BigInt(message.txId), position: BigInt(message.position) };
    this.advance(message.projection, at);
    if (message.halted) this.halt(message.projection);
    else this.halted.delete(message.projection);
    if (message.ids.length === 0) return;
    const upTo = BigInt(encodeRowPosition(at));
    if (message.table === PRODUCTS_TABLE) this.productsOut.changed(message.ids, upTo);
    else if (message.table === ORDERS_TABLE) this.ordersOut.changed(message.ids, upTo);
  }
}

/** Rows found changed after an outage, to their publisher: up to the last of them (all are applied). */
function catchUp<Row extends PositionedRow>(publisher: OrderedPublisher<Row>, rows: Row[]): void {
  if (rows.length === 0) return;
  const upTo = rows.reduce((max, row) => (BigInt(row.position) > max ? BigInt(row.position) : max), 0n);
  publisher.changed(
    rows.map((row) => row.id),
    upTo,
  );
}
