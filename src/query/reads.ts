import type { Database, Sql } from "../db/database";
import type { ReadReplicas } from "../db/replicas";
import type { Actor } from "../shared/auth";
import { CatalogQueries } from "./catalog.queries";
import { OrderQueries } from "./orders.queries";

export interface Readers {
  catalog: CatalogQueries;
  orders: OrderQueries;
}

const readerOf = (actor: Actor) => (actor.kind === "user" ? actor.id : undefined);

/**
 * Where the queries read. `primary`: the read database itself, for a mutation's read-back and
 * the rows pushed to subscribers (both follow a commit the replicas may not have replayed yet).
 * `for(actor)`: through the streaming replicas (READ_REPLICA_URLS) when there are some and the
 * actor wrote nothing through this instance that they may lack; else the read database.
 */
export class QueryReads {
  readonly primary: Readers;
  /** Through the replicas, and, for a writer they may lack the write of, the primary (counted apart). */
  private readonly routed: { replicas: Readers; primary: Readers } | undefined;

  private readonly replicas: ReadReplicas | undefined;

  constructor(
    read: Database | Readers,
    { replicas, lowStockThreshold }: { replicas?: ReadReplicas; lowStockThreshold?: number } = {},
  ) {
    this.replicas = replicas;
    const readers = (sql: Sql) => ({
      catalog: new CatalogQueries({ sql }, { lowStockThreshold }),
      orders: new OrderQueries({ sql }),
    });
    this.primary = "sql" in read ? readers(read.sql) : read;
    if (replicas && replicas.replicas.length > 0)
      this.routed = { replicas: readers(replicas.sql), primary: readers(replicas.primarySql) };
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
