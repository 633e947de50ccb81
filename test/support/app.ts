import { startApp, type App, type AppOverrides } from "../../src/app";
import { loadConfig, type Config, type LogLevel } from "../../src/config";
import { freshDatabase, TEST_READ_YOUR_WRITES_TIMEOUT_MS, type TestDatabase } from "./db";
import { GraphQLClient, TEST_JWT_SECRET, token } from "./client";

export interface TestApp {
  app: App;
  url: string;
  anonymous: GraphQLClient;
  admin: GraphQLClient;
  customer(id: string): GraphQLClient;
  stop(): Promise<void>;
}

export function testConfig(databaseUrl: string | undefined, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({ NODE_ENV: "test", JWT_SECRET: TEST_JWT_SECRET }),
    databaseUrl,
    port: 0,
    dbPoolSize: 10,
    projectorPollMs: 100,
    readYourWritesTimeoutMs: TEST_READ_YOUR_WRITES_TIMEOUT_MS,
    // Tests send mutations faster than a person, and race one actor's requests on purpose; the
    // limits have tests of their own.
    mutationsPerSecond: 0,
    mutationConcurrency: 0,
    // As in production: the tests name their documents by id (test/support/client.ts); the ones
    // that send documents of their own (bad input, error codes) say so.
    trustedDocuments: "only",
    logLevel: (process.env.TEST_LOG_LEVEL as LogLevel | undefined) ?? "silent",
    ...overrides,
  };
}

/** Starts a real API instance (HTTP + graphql-ws + projector) on a database. */
export async function startTestApp(
  db: Pick<TestDatabase, "url">,
  config: Partial<Config> = {},
  overrides: AppOverrides = {},
): Promise<TestApp> {
  const app = await startApp(testConfig(db.url, config), overrides);
  const url = `http://127.0.0.1:${app.port}`;
  const anonymous = new GraphQLClient(url);
  return {
    app,
    url,
    anonymous,
    admin: anonymous.as(token("admin", "ops")),
    customer: (id) => anonymous.as(token("customer", id)),
    stop: () => app.stop(),
  };
}

/** One fresh database and one API instance for a test file. */
export async function setupFile(
  config: Partial<Config> = {},
  overrides: AppOverrides = {},
): Promise<TestApp & { db: TestDatabase; teardown(): Promise<void> }> {
  const db = await freshDatabase();
  const t = await startTestApp(db, config, overrides);
  return {
    ...t,
    db,
    async teardown() {
      try {
        await t.stop();
      } finally {
        await db.drop();
      }
    },
  };
}
