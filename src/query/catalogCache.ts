import type { ReadChangedMessage } from "../projection/checkpoints";
import { IDS_PER_NOTIFY } from "../projection/checkpoints";
import type { CatalogQueries, ProductFilter, ProductRow } from "./catalog.queries";
import { pageSize, type ListOptions, type Page } from "./cursor";

/** The projection that writes read.products: its read_changed messages are the cache's invalidations. */
export const CATALOG_PROJECTION = "catalog";
export const PRODUCTS_TABLE = "products";

export type CatalogCacheKind = "row" | "page";
/** hit: from the cache; shared: the answer of the same read already under way; miss: read. */
export type CatalogCacheOutcome = "hit" | "shared" | "miss";

export interface CatalogCacheObserver {
  onCatalogCache(kind: CatalogCacheKind, outcome: CatalogCacheOutcome): void;
}

/** What the change feed tells a cache, in this order relative to waking read-your-writes waiters: before. */
export interface ReadChangeListener {
  /** A read_changed message, before the checkpoint it carries is advanced. */
  changed(message: ReadChangedMessage): void;
  /** LISTEN is down: invalidations may be missed from now on. */
  lost(): void;
  /** LISTEN is (re-)established: invalidations arrive again. */
  listening(): void;
}

interface CachedPage {
  rows: ProductRow[];
  hasNextPage: boolean;
  /** Present when the page was read with its count. */
  total: number | undefined;
}

/** A Map in least-recently-used order, holding at most `capacity` in weight (a page weighs its rows). */
class Lru<V> {
  private readonly map = new Map<string, { value: V; weight: number }>();
  private weight = 0;
  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, weight = 1): void {
    this.delete(key);
    if (weight > this.capacity) return;
    this.map.set(key, { value, weight });
    this.weight += weight;
    for (const [oldest, entry] of this.map) {
      if (this.weight <= this.capacity) break;
      this.map.delete(oldest);
      this.weight -= entry.weight;
    }
  }

  delete(key: string): void {
    const entry = this.map.get(key);
    if (!entry) return;
    this.map.delete(key);
    this.weight -= entry.weight;
  }

  clear(): void {
    this.map.clear();
    this.weight = 0;
  }

  get size(): number {
    return this.map.size;
  }
}

/** A read begun at `seq`: stored only if nothing it depends on was invalidated since. */
interface Fill {
  seq: number;
}

/**
 * Public catalog reads (a product by id, a page of products) kept in memory and dropped exactly
 * when read_changed says read.products changed: a row when the message names its id, every page
 * on any change (a change can move a row in or out of a filter, or change a count). Nothing in a
 * ProductRow depends on who reads it, so entries are shared by every actor.
 *
 * The change feed calls `changed` before it advances the checkpoint the message carries, so a
 * mutation that waits for its write to be projected (and every read after it) never finds the
 * row from before. A read that began before an invalidation that concerns it is answered but
 * not stored (its snapshot may predate the change). While LISTEN is down, invalidations are
 * lost: the cache is emptied and stores nothing until LISTEN is back.
 */
export class CatalogCache implements ReadChangeListener {
  private readonly rows: Lru<ProductRow | null>;
  private readonly pages: Lru<CachedPage>;
  /** Counts invalidations; a fill remembers the value when it began. */
  private seq = 0;
  /** The seq of the last invalidation of everything, of every page, and (while fills are in flight) of each row. */
  private allAt = 0;
  private pagesAt = 0;
  private readonly rowAt = new Map<string, number>();
  /** Pages being read by a fill that may store them. */
  private readonly reading = new Map<string, { fill: Fill; page: Promise<CachedPage> }>();
  private inFlight = 0;
  private listen = false;
  private readonly invalidated: Array<() => void> = [];
  private observer: CatalogCacheObserver | undefined;

  constructor(readonly entries: number) {
    if (!Number.isInteger(entries) || entries < 0) throw new Error(`entries must be an integer >= 0, got ${entries}`);
    this.rows = new Lru(entries);
    this.pages = new Lru(entries);
  }

  observe(observer: CatalogCacheObserver): void {
    this.observer = observer;
  }

  get enabled(): boolean {
    return this.entries > 0 && this.listen;
  }

  /** Called on every invalidation (before the change feed advances): e.g. to tell the replica router. */
  onInvalidate(fn: () => void): void {
    this.invalidated.push(fn);
  }

  changed(message: ReadChangedMessage): void {
    if (message.projection !== CATALOG_PROJECTION) return;
    if (message.table === PRODUCTS_TABLE && message.ids.length > 0 && message.ids.length < IDS_PER_NOTIFY) {
      const at = this.bump();
      for (const id of message.ids) {
        const key = id.toLowerCase();
        this.rows.delete(key);
        if (this.inFlight > 0) this.rowAt.set(key, at);
      }
      this.pages.clear();
      this.pagesAt = at;
      return;
    }
    // A full message may be one of several for one batch, each advancing the checkpoint: the ids
    // of the next ones are not known yet. A message without ids announces a batch that changed no
    // row, or a rebuilt table swapped in. Either way: everything goes.
    this.clear();
  }

  lost(): void {
    this.listen = false;
    this.clear();
  }

  listening(): void {
    this.clear();
    this.listen = true;
  }

  private clear(): void {
    this.allAt = this.bump();
    this.rows.clear();
    this.pages.clear();
    this.rowAt.clear();
    this.reading.clear();
  }

  private bump(): number {
    this.seq++;
    for (const fn of this.invalidated) fn();
    return this.seq;
  }

  get size(): { rows: number; pages: number } {
    return { rows: this.rows.size, pages: this.pages.size };
  }

  getRow(id: string): ProductRow | null | undefined {
    if (!this.enabled) return undefined;
    const row = this.rows.get(id.toLowerCase());
    this.observer?.onCatalogCache("row", row === undefined ? "miss" : "hit");
    return row;
  }

  /** The page, or the read of it under way that will be stored (nothing invalidated it since it began). */
  getPage(key: string): CachedPage | Promise<CachedPage> | undefined {
    if (!this.enabled) return undefined;
    const page = this.pages.get(key);
    if (page) {
      this.observer?.onCatalogCache("page", "hit");
      return page;
    }
    const reading = this.reading.get(key);
    if (reading && this.pageStorable(reading.fill)) {
      this.observer?.onCatalogCache("page", "shared");
      return reading.page;
    }
    this.observer?.onCatalogCache("page", "miss");
    return undefined;
  }

  /** A read of a page that will be stored: later lookups of the same page share it until it settles. */
  readingPage(fill: Fill, key: string, page: Promise<CachedPage>): void {
    const reading = { fill, page };
    this.reading.set(key, reading);
    const done = () => {
      if (this.reading.get(key) === reading) this.reading.delete(key);
    };
    page.then(done, done);
  }

  /** A read is about to begin; `end` it when it has settled, stored or not. */
  begin(): Fill {
    this.inFlight++;
    return { seq: this.seq };
  }

  end(_fill: Fill): void {
    if (--this.inFlight === 0) this.rowAt.clear();
  }

  storeRow(fill: Fill, id: string, row: ProductRow | null): void {
    const key = id.toLowerCase();
    if (!this.enabled || fill.seq < this.allAt || fill.seq < (this.rowAt.get(key) ?? 0)) return;
    this.rows.set(key, row);
  }

  private pageStorable(fill: Fill): boolean {
    return this.enabled && fill.seq >= this.allAt && fill.seq >= this.pagesAt;
  }

  storePage(fill: Fill, key: string, page: CachedPage): void {
    if (!this.pageStorable(fill)) return;
    this.pages.set(key, page, Math.max(1, page.rows.length));
  }
}

/**
 * CatalogQueries through a CatalogCache. `fresh` says, when a read begins, whether what the
 * queries read then is at least as new as every invalidation the cache has seen: always for the
 * read database itself; for reads routed to streaming replicas, only once they have replayed
 * past the last invalidation (else a lagging replica would put back the row just dropped).
 */
export class CachedCatalog {
  readonly byIds: CatalogQueries["byIds"];
  readonly bySku: CatalogQueries["bySku"];
  readonly changedAfter: CatalogQueries["changedAfter"];

  constructor(
    private readonly queries: CatalogQueries,
    private readonly cache: CatalogCache,
    private readonly fresh: () => boolean = () => true,
  ) {
    this.byIds = (ids) => queries.byIds(ids);
    this.bySku = (sku) => queries.bySku(sku);
    this.changedAfter = (ids, after, limit, latest) => queries.changedAfter(ids, after, limit, latest);
  }

  readonly byId = async (id: string): Promise<ProductRow | null> => {
    const cached = this.cache.getRow(id);
    if (cached !== undefined) return cached;
    if (!this.cache.enabled) return this.queries.byId(id);
    const fill = this.cache.begin();
    try {
      const storable = this.fresh();
      const row = await this.queries.byId(id);
      if (storable) this.cache.storeRow(fill, id, row);
      return row;
    } finally {
      this.cache.end(fill);
    }
  };

  async list(
    filter: ProductFilter,
    first: number | null | undefined,
    after: string | null | undefined,
    options: ListOptions = {},
  ): Promise<Page<ProductRow>> {
    const take = pageSize(first);
    const search = filter.search?.trim() || null;
    const inStock = filter.inStock ?? null;
    const withCount = options.count === true;
    const key = JSON.stringify([search, inStock, take, after ?? null, withCount]);
    const cached = this.cache.getPage(key);
    if (cached) return this.toPage(await cached, filter);
    if (!this.cache.enabled) return this.queries.list(filter, first, after, options);
    const fill = this.cache.begin();
    try {
      const storable = this.fresh();
      const read = this.queries.list(filter, first, after, options).then(async (page) => ({
        page,
        cached: { rows: page.rows, hasNextPage: page.hasNextPage, total: withCount ? await page.count() : undefined },
      }));
      if (storable)
        this.cache.readingPage(
          fill,
          key,
          read.then((r) => r.cached),
        );
      const result = await read;
      if (storable) this.cache.storePage(fill, key, result.cached);
      return result.page;
    } finally {
      this.cache.end(fill);
    }
  }

  private toPage(cached: CachedPage, filter: ProductFilter): Page<ProductRow> {
    const { rows, hasNextPage, total } = cached;
    const count =
      total !== undefined
        ? () => Promise.resolve(total)
        : () => this.list(filter, 0, null, { count: true }).then((p) => p.count());
    return { rows, hasNextPage, count };
  }
}
