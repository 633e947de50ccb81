import type { Database, Sql } from "../db/database";
import type { ReadReplicas } from "../db/replicas";
import type { Actor } from "../shared/auth";
import { CatalogQueries } from "./catalog.queries";
import { CachedCatalog, CatalogCache } from "./catalogCache";
import { OrderQueries } from "./orders.queries";

/** What the query side reads of the catalog: CatalogQueries, or the same through a result cache. */
export type CatalogReader = Pick<CatalogQueries, "byId" | "byIds" | "bySku" | "list" | "changedAfter">;

export interface Readers {
  catalog: CatalogReader;
  orders: OrderQueries;
}

const readerOf = (actor: Actor) => (actor.kind === "user" ? actor.id : undefined);

/** The result cache, as the replica router knows it: a reader that "wrote" at each invalidation. */
const CACHE_READER = "\0catalog result cache";

/**
 * Where the queries read. `primary`: the read database itself, for a mutation's read-back and
 * the rows pushed to subscribers (both follow a commit the replicas may not have replayed yet).
 * `for(actor)`: through the streaming replicas (READ_REPLICA_URLS) when there are some and the
 * actor wrote nothing through this instance that they may lack; else the read database.
 *
 * With a result cache, catalog reads go through it everywhere. A read through the replicas fills
 * it only once every serving replica has replayed past the last invalidation: the router treats
 * the cache as a reader that wrote at each invalidation.
 */
export class QueryReads {
  readonly primary: Readers;
  /** Through the replicas, and, for a writer they may lack the write of, the primary (counted apart). */
  private readonly routed: { replicas: Readers; primary: Readers } | undefined;

  private readonly replicas: ReadReplicas | undefined;

  constructor(
    read: Database | Readers,
    {
      replicas,
      lowStockThreshold,
      cache,
    }: { replicas?: ReadReplicas; lowStockThreshold?: number; cache?: CatalogCache } = {},
  ) {
    this.replicas = replicas;
    const readers = (sql: Sql, fresh?: () => boolean) => {
      const catalog = new CatalogQueries({ sql }, { lowStockThreshold });
      return {
        catalog: cache ? new CachedCatalog(catalog, cache, fresh) : catalog,
        orders: new OrderQueries({ sql }),
      };
    };
    this.primary = "sql" in read ? readers(read.sql) : read;
    if (replicas && replicas.replicas.length > 0) {
      this.routed = {
        replicas: readers(replicas.sql, () => replicas.servesReader(CACHE_READER)),
        primary: readers(replicas.primarySql),
      };
      cache?.onInvalidate(() => replicas.wrote(CACHE_READER));
    }
  }

  for(actor: Actor): Readers {
    if (!this.routed) return this.primary;
    return this.replicas!.servesReader(readerOf(actor)) ? this.routed.replicas : this.routed.primary;
  }

  /** The actor's write is visible in the read database: its reads stay there until the replicas have it too. */
  wrote(actor: Actor): void {
    const reader = readerOf(actor);
    if (reader !== undefined) this.replicas?.wrote(reader);
  }
}
