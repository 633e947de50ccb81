import { hostname } from "node:os";

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
  jwtSecret: string;
  logLevel: string;
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
  /** Run the projector in this process (it still needs the leader lock to project). */
  runProjector: boolean;
  /** On Postgres, run it on a worker thread of its own rather than on the API's event loop. */
  projectorThread: boolean;
  /** This instance, as the projections query names the leader of each projection. */
  instanceId: string;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

const DEV_SECRET = "dev-secret-change-me";

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const production = env.NODE_ENV === "production";
  const jwtSecret = env.JWT_SECRET || (production ? "" : DEV_SECRET);
  if (!jwtSecret) throw new ConfigError("JWT_SECRET is required when NODE_ENV=production");
  if (production && jwtSecret.length < 32)
    throw new ConfigError("JWT_SECRET must be at least 32 characters in production");
  if (env.READ_DATABASE_URL && !env.DATABASE_URL) {
    throw new ConfigError(
      "READ_DATABASE_URL needs DATABASE_URL: this instance serves commands and projects from the event log of the write database",
    );
  }
  const readReplicaUrls = (env.READ_REPLICA_URLS ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  if (readReplicaUrls.length > 0 && !env.DATABASE_URL)
    throw new ConfigError(
      "READ_REPLICA_URLS needs a read database on a Postgres server (READ_DATABASE_URL or DATABASE_URL)",
    );
  return {
    port: int(env, "PORT", 4000),
    databaseUrl: env.DATABASE_URL || undefined,
    readDatabaseUrl: env.READ_DATABASE_URL || env.DATABASE_URL || undefined,
    readReplicaUrls,
    readReplicaPollMs: int(env, "READ_REPLICA_POLL_MS", 100, 10),
    dataDir: env.DATA_DIR || ".data/pglite",
    jwtSecret,
    logLevel: env.LOG_LEVEL || (env.NODE_ENV === "test" ? "silent" : "info"),
    dbPoolSize: int(env, "DB_POOL_SIZE", 20, 1),
    readYourWritesTimeoutMs: int(env, "READ_YOUR_WRITES_TIMEOUT_MS", 2000),
    projectorPollMs: int(env, "PROJECTOR_POLL_MS", 1000, 10),
    projectorBatchSize: int(env, "PROJECTOR_BATCH_SIZE", 500, 1),
    readyMaxLagSeconds: int(env, "READY_MAX_LAG_SECONDS", 30),
    maxQueryDepth: int(env, "MAX_QUERY_DEPTH", 8, 1),
    maxQueryComplexity: int(env, "MAX_QUERY_COMPLEXITY", 2000, 1),
    runProjector: env.RUN_PROJECTOR !== "false",
    projectorThread: env.PROJECTOR_THREAD !== "false",
    instanceId: env.INSTANCE_ID || `${hostname()}:${process.pid}`,
  };
}
