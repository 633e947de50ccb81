import { commandSettings, type Config } from "./config";
import type { Database } from "./db/database";
import { loadMigrations, pendingMigrations } from "./db/migrate";
import { databases, migrateDatabases, openDatabases } from "./db/open";
import { logSource } from "./projection/logSource";
import { natsSource } from "./projection/natsSource";
import { getSchema } from "./graphql/schema";
import type { Services } from "./graphql/context";
import { createHttpApp, type HttpApp } from "./http/server";
import { STOREFRONT_DIR } from "./http/storefront";
import { ActorConcurrency, TokenBuckets } from "./graphql/rateLimit";
import { TrustedDocuments } from "./graphql/trustedDocuments";
import { Metrics } from "./http/metrics";
import { createLogger, type Logger } from "./logger";
import { ChangeFeed } from "./realtime/changeFeed";
import type { AnyProjection } from "./projection/projection";
import { ProjectionQueries } from "./query/projections.queries";
import { Projector, type ProjectorRunner } from "./projection/projector";
import { ProjectorThread } from "./projection/projectorThread";
import { allProjections } from "./projection/projections";
import { QueryReads } from "./query/reads";
import { CatalogCache } from "./query/catalogCache";
import { ReadReplicas } from "./db/replicas";
import { OrderExpiry } from "./process/orderExpiry";
import { Relay } from "./relay/relay";
import { RelayStatusQueries } from "./relay/relayStatus";
import { systemClock, uuid } from "./shared/clock";
import { CommandBus } from "./write/commandBus";
import { OperatorCommands } from "./operator/commands";

export interface App {
  readonly config: Config;
  /** The write database (write model, event log); absent on a query-only instance without DATABASE_URL. */
  readonly db: Database | undefined;
  /** The read database (read tables, checkpoints, read_changed): `db` itself unless READ_DATABASE_URL names another. */
  readonly readDb: Database;
  readonly projector: ProjectorRunner | undefined;
  /** Publishes the event log to NATS JetStream (SERVICES has relay): one leader among the instances. */
  readonly relay: Relay | undefined;
  /** Cancels the orders whose payment deadline passed (instances with commands; one leader among them). */
  readonly expiry: OrderExpiry | undefined;
  readonly services: Services;
  /** Public catalog reads kept until read_changed names a change (CATALOG_RESULT_CACHE_ENTRIES; absent at 0). */
  readonly cache: CatalogCache | undefined;
  readonly http: HttpApp;
  /** The port actually listened on (config.port 0 picks a free one). */
  readonly port: number;
  stop(): Promise<void>;
}

export interface AppOverrides {
  db?: Database;
  logger?: Logger;
  /** The projections to run instead of allProjections (fault injection: a projection that fails), in this thread. */
  projections?: AnyProjection[];
}

/** The composition root: config → database → migrations → projector → change feed → server. */
export async function startApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const dbs = overrides.db ? databases(overrides.db) : await openDatabases(config);
  const { write: db, read: readDb } = dbs;
  const ownsDb = !overrides.db;
  for (const [side, d] of Object.entries({ write: db, read: readDb })) {
    if (!d) continue;
    logger.info(
      { side, database: d.kind, location: d.location },
      d.kind === "embedded"
        ? `embedded Postgres (PGlite), data in ${d.location}`
        : `${side} side: Postgres at ${d.location}`,
    );
  }
  try {
    for (const { database, side, applied } of await migrateDatabases(dbs))
      if (applied.length > 0) logger.info({ applied, side, location: database.location }, "migrations applied");
    const migrations = (await loadMigrations()).map((m) => m.name);

    const replicas =
      dbs.replicas.length > 0
        ? new ReadReplicas(dbs.queries, dbs.replicas, { pollMs: config.readReplicaPollMs, logger })
        : undefined;
    const cache = config.catalogResultCacheEntries > 0 ? new CatalogCache(config.catalogResultCacheEntries) : undefined;
    const reads = new QueryReads(dbs.queries, { replicas, lowStockThreshold: config.lowStockThreshold, cache });
    const { catalog, orders } = reads.primary;
    // The lag is measured every PROJECTOR_POLL_MS by each projection's leader: stale after a few missed polls.
    const projections = new ProjectionQueries(readDb.prisma, Math.max(5000, 5 * config.projectorPollMs));
    // The cache hears read_changed on the connection the checkpoints come from, before them.
    const feed = new ChangeFeed(readDb, catalog, orders, logger, cache);
    const metrics = new Metrics(
      projections,
      () => feed.subscriberCount,
      () => replicas?.statuses() ?? [],
    );
    cache?.observe(metrics);
    replicas?.observe(metrics);
    const bus =
      db && config.services.has("commands")
        ? new CommandBus(db, systemClock, uuid, commandSettings(config), metrics)
        : undefined;
    if (bus && db)
      metrics.watchShedding(
        () => bus.overloaded(),
        () => db.backlog.queued,
      );
    const expiry =
      bus &&
      db &&
      new OrderExpiry(db, bus, systemClock, {
        batchSize: 100,
        instanceId: config.instanceId,
        logger,
        observer: metrics,
      });
    if (expiry) metrics.watchDeadlines(() => expiry.due());
    const relay =
      db && config.services.has("relay")
        ? new Relay(db, {
            servers: config.eventsNatsUrls,
            stream: config.eventsStream,
            replicas: config.eventsStreamReplicas,
            batchSize: config.projectorBatchSize,
            pollMs: config.projectorPollMs,
            ackTimeoutMs: 5000,
            instanceId: config.instanceId,
            logger,
            observer: metrics,
          })
        : undefined;
    const relayStatus =
      db && config.eventsNatsUrls.length > 0
        ? new RelayStatusQueries(
            db,
            {
              servers: config.eventsNatsUrls,
              name: config.eventsStream,
              connectionName: `relay status ${config.instanceId}`,
            },
            relay,
          )
        : undefined;
    const services: Services = {
      bus,
      feed,
      catalog,
      orders,
      reads,
      projections,
      relay: relayStatus,
      readYourWritesTimeoutMs: config.readYourWritesTimeoutMs,
      readModels: overrides.projections ?? allProjections,
      mutationLimit:
        config.mutationsPerSecond > 0 ? new TokenBuckets(config.mutationsPerSecond, config.mutationBurst) : undefined,
      mutationConcurrency:
        config.mutationConcurrency > 0 ? new ActorConcurrency(config.mutationConcurrency) : undefined,
    };

    const streamOptions = {
      servers: config.eventsNatsUrls,
      name: config.eventsStream,
      connectionName: `projector ${config.instanceId}`,
    };
    // On a thread of its own when it can (Postgres; projections not overridden): see projectorThread.ts.
    const threadSource =
      config.projectorSource === "nats"
        ? ({ kind: "nats", stream: streamOptions } as const)
        : config.databaseUrl && db?.kind === "postgres"
          ? ({ kind: "log", databaseUrl: config.databaseUrl } as const)
          : undefined;
    const readDatabaseUrl = config.readDatabaseUrl ?? config.databaseUrl;
    const thread =
      config.projectorThread && readDb.kind === "postgres" && readDatabaseUrl && threadSource && !overrides.projections
        ? { source: threadSource, readDatabaseUrl }
        : undefined;
    const stream =
      config.runProjector && !thread && config.projectorSource === "nats" ? natsSource(streamOptions) : undefined;
    const source = stream ?? (db && logSource(db));
    const projector = !config.runProjector
      ? undefined
      : thread
        ? new ProjectorThread(
            {
              ...thread,
              batchSize: config.projectorBatchSize,
              pollMs: config.projectorPollMs,
              logLevel: config.logLevel,
              instanceId: config.instanceId,
              deadlines: { queryTimeoutMs: config.dbQueryTimeoutMs, connectTimeoutMs: config.dbConnectTimeoutMs },
            },
            logger,
            metrics,
          )
        : !source
          ? undefined
          : // Projections given as overrides are functions: they run in this thread.
            new Projector(readDb, overrides.projections ?? allProjections, {
              source,
              batchSize: config.projectorBatchSize,
              pollMs: config.projectorPollMs,
              instanceId: config.instanceId,
              logger,
              observer: metrics,
            });
    await feed.start();
    await replicas?.start();
    await projector?.start();
    await relay?.start();
    expiry?.start();

    const http = await createHttpApp({
      schema: await getSchema(),
      services,
      served: config.services,
      auth: { secret: config.jwtSecret, jwks: config.authJwks },
      maxQueryDepth: config.maxQueryDepth,
      maxQueryComplexity: config.maxQueryComplexity,
      logger,
      metrics,
      readiness: () => readiness(dbs.all, migrations, projections, config.readyMaxLagSeconds),
      storefrontDir: STOREFRONT_DIR,
      devTokens: config.devTokens,
      corsOrigins: config.corsOrigins,
      trustedDocuments: TrustedDocuments.fromFile(config.trustedDocuments, (outcome) =>
        metrics.onUntrustedDocument(outcome),
      ),
      catalogCacheSeconds: config.catalogCacheSeconds,
      compressMinBytes: config.responseCompressionMinBytes,
      socketLimits: config.socketLimits,
      keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
      // The embedded database belongs to this process: the operator CLIs ask it to run their commands.
      operator:
        db?.kind === "embedded"
          ? new OperatorCommands(dbs, { batchSize: config.projectorBatchSize, logger, instanceId: config.instanceId })
          : undefined,
    });
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        await http.stop();
        await expiry?.stop();
        await relay?.stop();
        await projector?.stop();
        await stream?.close();
        await relayStatus?.close();
        await replicas?.stop();
        await feed.stop();
        if (ownsDb) await dbs.close();
      })());
    let port: number;
    try {
      port = await http.start(config.port);
    } catch (error) {
      // The port is taken, say: what started stops, in order, before the databases close.
      await stop().catch(() => undefined);
      throw error;
    }
    logger.info({ port }, `GraphQL at http://localhost:${port}/graphql (graphql-ws on the same path)`);

    return {
      config,
      db,
      readDb,
      projector,
      relay,
      expiry,
      services,
      cache,
      http,
      port,
      stop,
    };
  } catch (error) {
    if (ownsDb) await dbs.close().catch(() => undefined);
    throw error;
  }
}

async function readiness(
  dbs: Database[],
  migrations: string[],
  projections: ProjectionQueries,
  maxLagSeconds: number,
): Promise<string | null> {
  let deadline: NodeJS.Timeout | undefined;
  // A load balancer's probe gives up after a few seconds: answer before, whatever the database does.
  const tooSlow = new Promise<string>((resolve) => {
    deadline = setTimeout(() => resolve(`database not answering within ${READY_DEADLINE_MS} ms`), READY_DEADLINE_MS);
  });
  try {
    return await Promise.race([tooSlow, checks()]);
  } finally {
    clearTimeout(deadline);
  }

  async function checks(): Promise<string | null> {
    try {
      // At once, not one after another: under load each waits its turn for a pooled connection
      // (about MUTATION_QUEUE_MS at most while mutations are shed), and the probe has 2 s.
      // Missing migrations are the reason even when the statuses failed for them (no tables yet).
      const [pendingPerDb, statuses] = await Promise.allSettled([
        Promise.all(dbs.map((d) => pendingMigrations(d, migrations))),
        projections.statuses(),
      ]);
      if (pendingPerDb.status === "rejected") throw pendingPerDb.reason;
      const pending = pendingPerDb.value.flat();
      if (pending.length > 0) return `migrations not applied: ${pending.join(", ")}`;
      if (statuses.status === "rejected") throw statuses.reason;
      // A FAILED projection is reported by /metrics and `projections`, not here: taking every
      // instance out of service would not fix a poison event.
      for (const s of statuses.value) {
        if (s.status === "RUNNING" && s.lagSeconds > maxLagSeconds)
          return `projection ${s.name} is ${s.lagSeconds.toFixed(1)} s behind`;
      }
      return null;
    } catch (error) {
      return `database unreachable: ${(error as Error).message}`;
    }
  }
}

const READY_DEADLINE_MS = 2000;
