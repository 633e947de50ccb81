import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config";
import { parseLsn } from "../../src/db/replicas";

describe("the configuration of the databases", () => {
  it("defaults the read database to the write database, with no replicas", () => {
    const config = loadConfig({ DATABASE_URL: "postgres://w/shop" });
    expect(config).toMatchObject({ databaseUrl: "postgres://w/shop", readDatabaseUrl: "postgres://w/shop" });
    expect(config.readReplicaUrls).toEqual([]);
  });

  it("takes a read database and a comma-separated list of its replicas", () => {
    const config = loadConfig({
      DATABASE_URL: "postgres://w/shop",
      READ_DATABASE_URL: "postgres://r/shop",
      READ_REPLICA_URLS: " postgres://r1/shop, postgres://r2/shop ,",
      READ_REPLICA_POLL_MS: "250",
    });
    expect(config).toMatchObject({
      readDatabaseUrl: "postgres://r/shop",
      readReplicaUrls: ["postgres://r1/shop", "postgres://r2/shop"],
      readReplicaPollMs: 250,
    });
  });

  it("refuses replicas or a read database without a Postgres write database, in words", () => {
    expect(() => loadConfig({ READ_REPLICA_URLS: "postgres://r1/shop" })).toThrow(ConfigError);
    expect(() => loadConfig({ READ_REPLICA_URLS: "postgres://r1/shop" })).toThrow(/READ_REPLICA_URLS needs/);
    expect(() => loadConfig({ READ_DATABASE_URL: "postgres://r/shop" })).toThrow(
      /READ_DATABASE_URL without DATABASE_URL serves queries/,
    );
    expect(() => loadConfig({ DATABASE_URL: "postgres://w/shop", READ_REPLICA_POLL_MS: "5" })).toThrow(
      /READ_REPLICA_POLL_MS must be an integer >= 10/,
    );
  });
});

describe("SERVICES", () => {
  it("serves everything by default, and the relay only with EVENTS_NATS_URL", () => {
    expect([...loadConfig({}).services]).toEqual(["commands", "queries", "projector"]);
    expect([...loadConfig({ EVENTS_NATS_URL: "nats://nats-1.example:4222" }).services]).toContain("relay");
  });

  it("takes a subset; the projector runs only when served and RUN_PROJECTOR is not false", () => {
    const queries = loadConfig({ SERVICES: "queries, commands" });
    expect([...queries.services].sort()).toEqual(["commands", "queries"]);
    expect(queries.runProjector).toBe(false);
    expect(loadConfig({ SERVICES: "projector" }).runProjector).toBe(true);
    expect(loadConfig({ RUN_PROJECTOR: "false" }).runProjector).toBe(false);
  });

  it("lets an instance that serves queries only run on the read database alone", () => {
    const config = loadConfig({ SERVICES: "queries", READ_DATABASE_URL: "postgres://r/shop" });
    expect(config).toMatchObject({ databaseUrl: undefined, readDatabaseUrl: "postgres://r/shop", runProjector: false });
    expect(() => loadConfig({ SERVICES: "queries,projector", READ_DATABASE_URL: "postgres://r/shop" })).toThrow(
      ConfigError,
    );
  });

  it("refuses an unknown service by name", () => {
    expect(() => loadConfig({ SERVICES: "queries,reports" })).toThrow(/SERVICES: unknown "reports"; known: commands/);
  });
});

describe("WAL positions", () => {
  it("compare as numbers, high word first", () => {
    expect(parseLsn("0/0")).toBe(0n);
    expect(parseLsn("0/16B3748")).toBe(0x16b3748n);
    expect(parseLsn("1/0")).toBe(1n << 32n);
    expect(parseLsn("16/B374D848") > parseLsn("F/FFFFFFFF")).toBe(true);
  });
});

describe("the configuration of tokens", () => {
  const idp = { AUTH_JWKS_URL: "https://idp.example/certs", AUTH_ISSUER: "https://idp.example", AUTH_AUDIENCE: "shop" };

  it("takes an identity provider's JWKS, issuer, audience and role claim; HS256 then only with JWT_SECRET set", () => {
    const config = loadConfig({ ...idp, AUTH_ROLE_CLAIM: "realm_access.roles" });
    expect(config.authJwks).toEqual({
      url: "https://idp.example/certs",
      issuer: "https://idp.example",
      audience: "shop",
      roleClaim: "realm_access.roles",
    });
    expect(config.jwtSecret).toBeUndefined();
    expect(loadConfig({ ...idp, JWT_SECRET: "explicit" }).jwtSecret).toBe("explicit");
    expect(loadConfig({}).jwtSecret).toBe("dev-secret-change-me"); // development, no provider
  });

  it("runs in production on the provider's keys alone, and refuses an incomplete or non-http provider, in words", () => {
    expect(loadConfig({ ...idp, NODE_ENV: "production" }).jwtSecret).toBeUndefined();
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH_JWKS_URL: "https://idp.example/certs" })).toThrow(
      "AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE",
    );
    expect(() => loadConfig({ ...idp, AUTH_JWKS_URL: "file:///etc/keys" })).toThrow(
      "AUTH_JWKS_URL must be an http(s) URL",
    );
  });
});

describe("the configuration of CORS", () => {
  it("takes a comma-separated list of origins, and refuses anything that is not one", () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: "https://shop.example, http://localhost:5173" }).corsOrigins).toEqual([
      "https://shop.example",
      "http://localhost:5173",
    ]);
    expect(() => loadConfig({ CORS_ORIGINS: "https://shop.example/path" })).toThrow("is not an origin");
    expect(() => loadConfig({ CORS_ORIGINS: "shop.example" })).toThrow("is not an origin");
  });
});

describe("load shedding (MUTATION_QUEUE_MS)", () => {
  it("is on in production (500 ms), off elsewhere, and either way as set", () => {
    expect(loadConfig({}).mutationQueueMs).toBe(0);
    expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32) }).mutationQueueMs).toBe(500);
    expect(loadConfig({ MUTATION_QUEUE_MS: "250" }).mutationQueueMs).toBe(250);
    expect(
      loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32), MUTATION_QUEUE_MS: "0" }).mutationQueueMs,
    ).toBe(0);
    expect(() => loadConfig({ MUTATION_QUEUE_MS: "-1" })).toThrow(ConfigError);
  });
});

describe("trusted documents (TRUSTED_DOCUMENTS)", () => {
  it("are off by default, required in production, and one of off, allow, only", () => {
    expect(loadConfig({}).trustedDocuments).toBe("off");
    expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32) }).trustedDocuments).toBe("only");
    expect(loadConfig({ TRUSTED_DOCUMENTS: "allow" }).trustedDocuments).toBe("allow");
    expect(() => loadConfig({ TRUSTED_DOCUMENTS: "some" })).toThrow(ConfigError);
    expect(loadConfig({}).catalogCacheSeconds).toBe(5);
  });
});

describe("deadlines and limits", () => {
  it("have defaults, and take integers", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      dbQueryTimeoutMs: 15_000,
      dbConnectTimeoutMs: 5000,
      queryStatementTimeoutMs: 5000,
      httpKeepAliveTimeoutMs: 65_000,
      responseCompressionMinBytes: 0, // off: a proxy in front compresses at no cost to the API's CPU
      mutationConcurrency: 4,
      socketLimits: { subscriptionsPerSocket: 100, socketsPerActor: 16, socketsPerIp: 256, trustProxyHops: 0 },
    });
    expect(() => loadConfig({ DB_QUERY_TIMEOUT_MS: "soon" })).toThrow(ConfigError);
    expect(() => loadConfig({ WS_MAX_MESSAGE_BYTES: "10" })).toThrow(ConfigError);
    expect(() => loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT_MS: "0" })).toThrow(ConfigError);
    expect(() => loadConfig({ RESPONSE_COMPRESSION_MIN_BYTES: "-1" })).toThrow(ConfigError);
    expect(loadConfig({ RESPONSE_COMPRESSION_MIN_BYTES: "1024" }).responseCompressionMinBytes).toBe(1024);
  });

  it("refuses a log level pino does not know, and a burst of 0 while there is a rate limit", () => {
    expect(loadConfig({}).logLevel).toBe("info");
    expect(loadConfig({ NODE_ENV: "test" }).logLevel).toBe("silent");
    expect(loadConfig({ LOG_LEVEL: "debug" }).logLevel).toBe("debug");
    expect(() => loadConfig({ LOG_LEVEL: "verbose" })).toThrow(/LOG_LEVEL must be one of fatal, error, warn, info/);
    expect(() => loadConfig({ MUTATION_BURST: "0" })).toThrow(/MUTATION_BURST must be an integer >= 1/);
    // No rate limit: no bucket, so its size may be 0 too.
    expect(loadConfig({ MUTATIONS_PER_SECOND: "0", MUTATION_BURST: "0" })).toMatchObject({
      mutationsPerSecond: 0,
      mutationBurst: 0,
    });
  });
});
