import type { ReadChangedMessage } from "../projection/checkpoints";
import { IDS_PER_NOTIFY } from "../projection/checkpoints";
import { CATALOG_PROJECTION, PRODUCTS_TABLE } from "../projection/names";
import type { CatalogQueries, ProductFilter, ProductRow } from "./catalog.queries";
import { pageSize, type ListOptions, type Page } from "./cursor";

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

/**
 * The columns of read.products that decide which rows any page lists, in which order, and its
 * count: what a search matches (name, sku; search_key follows them) and the order (name, id,
 * which never changes). A change of other columns (a stock move) changes a page only if the page
 * lists the row, or filters on inStock and in_stock is among them.
 */
const LISTING_COLUMNS: ReadonlySet<string> = new Set(["name", "sku"]);
const IN_STOCK_COLUMN = "in_stock";

/** A Map in least-recently-used order, holding at most `capacity` in weight (a page weighs its rows). */
class Lru<V> {
  private readonly map = new Map<string, { value: V; weight: number }>();
  private weight = 0;
  constructor(
    private readonly capacity: number,
    /** Told of every entry that leaves, but by clear(). */
    private readonly removed: (key: string, value: V) => void = () => undefined,
  ) {}

  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  /** Whether it was stored (not when it alone weighs more than the capacity). */
  set(key: string, value: V, weight = 1): boolean {
    this.delete(key);
    if (weight > this.capacity) return false;
    this.map.set(key, { value, weight });
    this.weight += weight;
    for (const [oldest, entry] of this.map) {
      if (this.weight <= this.capacity) break;
      this.map.delete(oldest);
      this.weight -= entry.weight;
      this.removed(oldest, entry.value);
    }
    return true;
  }

  delete(key: string): void {
    const entry = this.map.get(key);
    if (!entry) return;
    this.map.delete(key);
    this.weight -= entry.weight;
    this.removed(key, entry.value);
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

/** A page, and whether its filter has inStock. */
interface PageEntry {
  page: CachedPage;
  stockFiltered: boolean;
}

/** Pages in least-recently-used order, with the keys of the pages that list each product, and of those filtered on inStock. */
class Pages {
  private readonly lru: Lru<PageEntry>;
  private readonly listing = new Map<string, Set<string>>();
  private readonly stockFiltered = new Set<string>();

  constructor(capacity: number) {
    this.lru = new Lru(capacity, (key, entry) => {
      this.stockFiltered.delete(key);
      for (const row of entry.page.rows) {
        const keys = this.listing.get(row.id);
        keys?.delete(key);
        if (keys?.size === 0) this.listing.delete(row.id);
      }
    });
  }

  get(key: string): PageEntry | undefined {
    return this.lru.get(key);
  }

  set(key: string, entry: PageEntry): void {
    if (!this.lru.set(key, entry, Math.max(1, entry.page.rows.length))) return;
    if (entry.stockFiltered) this.stockFiltered.add(key);
    for (const row of entry.page.rows) {
      const keys = this.listing.get(row.id) ?? new Set<string>();
      keys.add(key);
      this.listing.set(row.id, keys);
    }
  }

  /** Drops the pages that list any of these products. */
  dropListing(ids: readonly string[]): void {
    for (const id of ids) for (const key of [...(this.listing.get(id) ?? [])]) this.lru.delete(key);
  }

  dropStockFiltered(): void {
    for (const key of [...this.stockFiltered]) this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
    this.listing.clear();
    this.stockFiltered.clear();
  }

  get size(): number {
    return this.lru.size;
  }
}

/**
 * Public catalog reads (a product by id, a page of products) kept in memory and dropped exactly
 * when read_changed says read.products changed: a row when the message names its id; a page
 * when the message names a row it lists, and every page when a product may have come, gone, or
 * changed its name or sku (a page's members, order and count). When the message says the rows
 * changed in other columns only (`updated`: a stock move), the other pages stay, but those
 * filtered on inStock when in_stock is among them. Nothing in a ProductRow depends on who reads
 * it, so entries are shared by every actor.
 *
 * The change feed calls `changed` before it advances the checkpoint the message carries, so a
 * mutation that waits for its write to be projected (and every read after it) never finds the
 * row from before. A read that began before an invalidation that concerns it is answered but
 * not stored (its snapshot may predate the change). While LISTEN is down, invalidations are
 * lost: the cache is emptied and stores nothing until LISTEN is back.
 */
export class CatalogCache implements ReadChangeListener {
  private readonly rows: Lru<ProductRow | null>;
  private readonly pages: Pages;
  /** Counts invalidations; a fill remembers the value when it began. */
  private seq = 0;
  /**
   * The seq of the last invalidation of everything, of every page, of the pages filtered on
   * inStock, and (while fills are in flight) of each row.
   */
  private allAt = 0;
  private pagesAt = 0;
  private stockPagesAt = 0;
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
    this.pages = new Pages(entries);
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
      const ids = message.ids.map((id) => id.toLowerCase());
      for (const id of ids) {
        this.rows.delete(id);
        if (this.inFlight > 0) this.rowAt.set(id, at);
      }
      const { updated } = message;
      if (!updated || updated.some((column) => LISTING_COLUMNS.has(column))) {
        this.pages.clear();
        this.pagesAt = at;
        return;
      }
      this.pages.dropListing(ids);
      if (updated.includes(IN_STOCK_COLUMN)) {
        this.pages.dropStockFiltered();
        this.stockPagesAt = at;
      }
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

  /**
   * The page, or the read of it under way: its answer unless a product it lists changed since the
   * read began (then undefined: read it again). A read under way is shared only if no change of
   * every page (or, filtered on inStock, of in_stock) came since it began.
   */
  getPage(key: string, stockFiltered: boolean): CachedPage | Promise<CachedPage | undefined> | undefined {
    if (!this.enabled) return undefined;
    const entry = this.pages.get(key);
    if (entry) {
      this.observer?.onCatalogCache("page", "hit");
      return entry.page;
    }
    const reading = this.reading.get(key);
    if (reading && this.pagesFresh(reading.fill, stockFiltered)) {
      this.observer?.onCatalogCache("page", "shared");
      const joined = this.begin();
      return reading.page
        .then((page) => (this.rowsFresh(reading.fill, page.rows) ? page : undefined))
        .finally(() => this.end(joined));
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

  /** No invalidation of every page, or of every page filtered on inStock, since the fill began. */
  private pagesFresh(fill: Fill, stockFiltered: boolean): boolean {
    return fill.seq >= this.allAt && fill.seq >= this.pagesAt && (!stockFiltered || fill.seq >= this.stockPagesAt);
  }

  /** None of these rows invalidated since the fill began (known while a fill is in flight). */
  private rowsFresh(fill: Fill, rows: readonly ProductRow[]): boolean {
    return rows.every((row) => fill.seq >= (this.rowAt.get(row.id) ?? 0));
  }

  storePage(fill: Fill, key: string, page: CachedPage, stockFiltered: boolean): void {
    if (!this.enabled || !this.pagesFresh(fill, stockFiltered) || !this.rowsFresh(fill, page.rows)) return;
    this.pages.set(key, { page, stockFiltered });
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
    const stockFiltered = inStock !== null;
    const cached = await this.cache.getPage(key, stockFiltered);
    if (cached) return this.toPage(cached, filter);
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
      if (storable) this.cache.storePage(fill, key, result.cached, stockFiltered);
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
