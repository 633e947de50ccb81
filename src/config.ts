import { hostname } from "node:os";
import { DEFAULT_LOW_STOCK_THRESHOLD } from "./query/catalog.queries";
import type { JwksOptions } from "./http/auth";
import type { SocketLimits } from "./http/socketLimits";
import type { CommandSettings } from "./write/command";
import { TRUSTED_DOCUMENTS_MODES, type TrustedDocumentsMode } from "./graphql/trustedDocuments";

// Environment parsed and validated once; nothing else reads process.env.
export interface Config {
  port: number;
  /** The write database (write model, event log). Unset: an embedded Postgres (PGlite) persisted under dataDir. */
  databaseUrl: string | undefined;
  /** The read database (read tables, checkpoints, read_changed); default the write database. */
  readDatabaseUrl: string | undefined;
  /** Streaming replicas of the read database, for queries. */
  readReplicaUrls: string[];
  /** How often the read database's and the replicas' WAL positions are looked at. */
  readReplicaPollMs: number;
  dataDir: string;
  /** HS256 tokens' secret; unset when an identity provider's JWKS is configured and JWT_SECRET is not. */
  jwtSecret: string | undefined;
  /** Tokens from an identity provider (AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE, AUTH_ROLE_CLAIM). */
  authJwks: JwksOptions | undefined;
  logLevel: LogLevel;
  /** Pool size for the Postgres driver. */
  dbPoolSize: number;
  /** How long a mutation waits for its read row before returning it as null. */
  readYourWritesTimeoutMs: number;
  /** Safety-net poll of the projector when no notification arrives. */
  projectorPollMs: number;
  projectorBatchSize: number;
  /** /readyz fails when the projector lags further than this. */
  readyMaxLagSeconds: number;
  maxQueryDepth: number;
  maxQueryComplexity: number;
  /** Run the projector in this process (it still needs the leases to project): SERVICES has projector and RUN_PROJECTOR is not false. */
  runProjector: boolean;
  /** On Postgres, run it on a worker thread of its own rather than on the API's event loop. */
  projectorThread: boolean;
  /** This instance, as the projections query names the leader of each projection. */
  instanceId: string;
  /** What this instance serves: operations of the others answer NOT_SERVED. */
  services: ReadonlySet<Service>;
  /** NATS servers of the event stream (EVENTS_NATS_URL); empty: no broker. */
  eventsNatsUrls: string[];
  /** The JetStream stream the relay writes the event log to. */
  eventsStream: string;
  /** Its replicas (R3 on a 3-node NATS cluster). */
  eventsStreamReplicas: number;
  /** Where the projector reads the events: the event log of the write database, or the stream. */
  projectorSource: "log" | "nats";
  /** How long a placed order waits for its payment before the system cancels it. */
  orderPaymentTimeoutSeconds: number;
  /** A product with this many or fewer available (and some) shows LOW_STOCK. */
  lowStockThreshold: number;
  /** POST /dev/token mints demo tokens for the storefront's sign-in buttons: never in production. */
  devTokens: boolean;
  /** Mutations per signed-in actor per second on one instance (0: no limit), and the burst allowed above it. */
  mutationsPerSecond: number;
  mutationBurst: number;
  /** Commands of one signed-in actor running at once on one instance (0: no limit); the others wait their turn. */
  mutationConcurrency: number;
  /**
   * A client's mutations are refused at once (OVERLOADED, HTTP 503) while the write database's
   * queue for connections stands: every transaction of the last 100 ms waited longer than this,
   * and more wait than this long hands out (0: never; the default outside production; see
   * src/db/backlog.ts).
   */
  mutationQueueMs: number;
  /** Origins whose pages may call the API from a browser (CORS); none by default: same origin only. */
  corsOrigins: string[];
  /** Documents outside the trusted-documents manifest: run (off, allow: counted) or refused to non-admins (only). */
  trustedDocuments: TrustedDocumentsMode;
  /** max-age of a GET of a trusted public catalog query (Cache-Control: public, and an ETag); 0: no-store. */
  catalogCacheSeconds: number;
  /** GraphQL answers over HTTP of at least this many bytes go compressed to clients that accept it; 0 (the default): never. */
  responseCompressionMinBytes: number;
  /** Product rows the catalog result cache holds, by id and in pages (each at most this many); 0: off. */
  catalogResultCacheEntries: number;
  /** graphql-ws limits: subscriptions per socket, sockets per actor and per address, message size, connection_init wait. */
  socketLimits: SocketLimits;
  /** Postgres cancels a statement of the query side (reads, pushes) after this long (0: never). */
  queryStatementTimeoutMs: number;
  /** A statement of a request pool with no answer in this time fails and drops its connection (0: never). */
  dbQueryTimeoutMs: number;
  /** Opening a pooled connection fails after this long (0: never). */
  dbConnectTimeoutMs: number;
  /** How long an idle keep-alive HTTP connection stays open (HTTP_KEEP_ALIVE_TIMEOUT_MS). */
  httpKeepAliveTimeoutMs: number;
}

function services(env: NodeJS.ProcessEnv): Set<Service> {
  if (!env.SERVICES?.trim())
    return new Set(["commands", "queries", "projector", ...(env.EVENTS_NATS_URL ? ["relay" as const] : [])]);
  const names = env.SERVICES.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(SERVICES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new ConfigError(
      `SERVICES: unknown ${unknown.map((n) => `"${n}"`).join(", ")}; known: ${SERVICES.join(", ")}`,
    );
  return new Set(names as Service[]);
}

export class ConfigError extends Error {}

function corsOrigins(raw: string | undefined): string[] {
  return list(raw).map((origin) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port])`);
    }
    if (url.origin !== origin.replace(/\/$/, ""))
      throw new ConfigError(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path)`);
    return url.origin;
  });
}

function jwks(env: NodeJS.ProcessEnv): JwksOptions | undefined {
  const url = env.AUTH_JWKS_URL?.trim();
  if (!url) return undefined;
  if (!/^https?:\/\//.test(url)) throw new ConfigError(`AUTH_JWKS_URL must be an http(s) URL, got "${url}"`);
  const issuer = env.AUTH_ISSUER?.trim();
  const audience = env.AUTH_AUDIENCE?.trim();
  if (!issuer || !audience) throw new ConfigError("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE");
  return { url, issuer, audience, roleClaim: env.AUTH_ROLE_CLAIM?.trim() || undefined };
}

/** The variable's value (or `fallback`), one of `allowed`; anything else is a configuration error. */
function oneOf<const T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name]?.trim() || fallback;
  const value = allowed.find((a) => a === raw);
  if (!value) throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  return value;
}

/** What an instance does (SERVICES): any subset, all by default. */
export const SERVICES = ["commands", "queries", "projector", "relay"] as const;

/** READ_YOUR_WRITES_TIMEOUT_MS's default: how long a mutation waits for its own rows to be projected. */
export const DEFAULT_READ_YOUR_WRITES_TIMEOUT_MS = 2000;
/**
 * MUTATION_QUEUE_MS's default in production (elsewhere 0: off). A burst's queue drains long before
 * it; but a closed loop of many clients on one hot product waits about this long too, and cannot
 * grow past its clients: development and test load sees the queue as it is (see the README).
 */
export const DEFAULT_MUTATION_QUEUE_MS = 500;
export type Service = (typeof SERVICES)[number];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

/** pino's levels, and silent. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const list = (raw: string | undefined) =>
  (raw ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);

const DEV_SECRET = "dev-secret-change-me";

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const production = env.NODE_ENV === "production";
  const authJwks = jwks(env);
  // With an identity provider, HS256 tokens only when JWT_SECRET is set explicitly too.
  const jwtSecret = env.JWT_SECRET || (production || authJwks ? undefined : DEV_SECRET);
  if (!jwtSecret && !authJwks)
    throw new ConfigError(
      "JWT_SECRET (or AUTH_JWKS_URL with AUTH_ISSUER and AUTH_AUDIENCE) is required when NODE_ENV=production",
    );
  if (production && jwtSecret && jwtSecret.length < 32)
    throw new ConfigError("JWT_SECRET must be at least 32 characters in production");
  const served = services(env);
  const runProjector = env.RUN_PROJECTOR !== "false" && served.has("projector");
  const projectsFromLog = runProjector && env.PROJECTOR_SOURCE !== "nats";
  if (
    env.READ_DATABASE_URL &&
    !env.DATABASE_URL &&
    (served.has("commands") || projectsFromLog || served.has("relay"))
  ) {
    throw new ConfigError(
      "READ_DATABASE_URL without DATABASE_URL serves queries, and projects from the event stream (PROJECTOR_SOURCE=nats) at most: commands, the relay and a projector on the event log need the write database (DATABASE_URL)",
    );
  }
  const readReplicaUrls = list(env.READ_REPLICA_URLS);
  if (readReplicaUrls.length > 0 && !env.DATABASE_URL && !env.READ_DATABASE_URL)
    throw new ConfigError(
      "READ_REPLICA_URLS needs a read database on a Postgres server (READ_DATABASE_URL or DATABASE_URL)",
    );
  const eventsNatsUrls = list(env.EVENTS_NATS_URL);
  if (served.has("relay") && eventsNatsUrls.length === 0)
    throw new ConfigError("SERVICES has relay: set EVENTS_NATS_URL to the NATS servers to relay the event log to");
  const projectorSource = oneOf(env, "PROJECTOR_SOURCE", ["log", "nats"], "log");
  if (projectorSource === "nats" && eventsNatsUrls.length === 0)
    throw new ConfigError("PROJECTOR_SOURCE=nats needs EVENTS_NATS_URL");
  const mutationsPerSecond = int(env, "MUTATIONS_PER_SECOND", 20);
  return {
    port: int(env, "PORT", 4000),
    databaseUrl: env.DATABASE_URL || undefined,
    readDatabaseUrl: env.READ_DATABASE_URL || env.DATABASE_URL || undefined,
    readReplicaUrls,
    readReplicaPollMs: int(env, "READ_REPLICA_POLL_MS", 100, 10),
    dataDir: env.DATA_DIR || ".data/pglite",
    jwtSecret,
    authJwks,
    logLevel: oneOf(env, "LOG_LEVEL", LOG_LEVELS, env.NODE_ENV === "test" ? "silent" : "info"),
    dbPoolSize: int(env, "DB_POOL_SIZE", 20, 1),
    readYourWritesTimeoutMs: int(env, "READ_YOUR_WRITES_TIMEOUT_MS", DEFAULT_READ_YOUR_WRITES_TIMEOUT_MS),
    projectorPollMs: int(env, "PROJECTOR_POLL_MS", 1000, 10),
    projectorBatchSize: int(env, "PROJECTOR_BATCH_SIZE", 500, 1),
    readyMaxLagSeconds: int(env, "READY_MAX_LAG_SECONDS", 30),
    maxQueryDepth: int(env, "MAX_QUERY_DEPTH", 8, 1),
    maxQueryComplexity: int(env, "MAX_QUERY_COMPLEXITY", 2000, 1),
    runProjector,
    projectorThread: env.PROJECTOR_THREAD !== "false",
    instanceId: env.INSTANCE_ID || `${hostname()}:${process.pid}`,
    services: served,
    eventsNatsUrls,
    eventsStream: env.EVENTS_STREAM || "SHOP_EVENTS",
    eventsStreamReplicas: int(env, "EVENTS_STREAM_REPLICAS", 1, 1),
    projectorSource,
    orderPaymentTimeoutSeconds: int(env, "ORDER_PAYMENT_TIMEOUT_SECONDS", 900, 1),
    lowStockThreshold: int(env, "LOW_STOCK_THRESHOLD", DEFAULT_LOW_STOCK_THRESHOLD),
    devTokens: !production,
    mutationsPerSecond,
    // The bucket's size: at least one mutation, unless there is no bucket.
    mutationBurst: int(env, "MUTATION_BURST", 40, mutationsPerSecond > 0 ? 1 : 0),
    mutationConcurrency: int(env, "MUTATION_CONCURRENCY", 4),
    mutationQueueMs: int(env, "MUTATION_QUEUE_MS", production ? DEFAULT_MUTATION_QUEUE_MS : 0),
    corsOrigins: corsOrigins(env.CORS_ORIGINS),
    trustedDocuments: oneOf(env, "TRUSTED_DOCUMENTS", TRUSTED_DOCUMENTS_MODES, production ? "only" : "off"),
    catalogCacheSeconds: int(env, "CATALOG_CACHE_SECONDS", 5),
    responseCompressionMinBytes: int(env, "RESPONSE_COMPRESSION_MIN_BYTES", 0),
    catalogResultCacheEntries: int(env, "CATALOG_RESULT_CACHE_ENTRIES", 10_000),
    socketLimits: {
      subscriptionsPerSocket: int(env, "MAX_SUBSCRIPTIONS_PER_SOCKET", 100),
      socketsPerActor: int(env, "MAX_SOCKETS_PER_ACTOR", 16),
      socketsPerIp: int(env, "MAX_SOCKETS_PER_IP", 256),
      messageBytes: int(env, "WS_MAX_MESSAGE_BYTES", 64 * 1024, 1024),
      connectionInitTimeoutMs: int(env, "WS_CONNECTION_INIT_TIMEOUT_MS", 3000, 100),
      trustProxyHops: int(env, "TRUST_PROXY_HOPS", 0),
    },
    queryStatementTimeoutMs: int(env, "QUERY_STATEMENT_TIMEOUT_MS", 5000),
    dbQueryTimeoutMs: int(env, "DB_QUERY_TIMEOUT_MS", 15_000),
    dbConnectTimeoutMs: int(env, "DB_CONNECT_TIMEOUT_MS", 5000),
    httpKeepAliveTimeoutMs: int(env, "HTTP_KEEP_ALIVE_TIMEOUT_MS", 65_000, 1000),
  };
}

/** What of the configuration the commands apply. */
export const commandSettings = (config: Pick<Config, "orderPaymentTimeoutSeconds">): CommandSettings => ({
  orderPaymentTimeoutSeconds: config.orderPaymentTimeoutSeconds,
});
