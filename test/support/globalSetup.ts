import { createHash } from "node:crypto";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { openPostgres } from "../../src/db/postgres";
import { loadMigrations, migrate } from "../../src/db/migrate";
import { isAlive } from "../../src/shared/process";
import { buildServer } from "../../scripts/build-server";
import { prepareEmbeddedTemplate } from "../../src/db/pgliteTemplate";

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Migrates one template database per migration set; each test file then gets its own
 * database copied from it (CREATE DATABASE ... TEMPLATE, a file copy: fast). Builds the server
 * that `npm start` runs (dist/server) from the code as it is now: the tests that start the API
 * as a process of its own start that one. Makes the embedded database's template if
 * `npm install` did not (each embedded test database is a copy of it).
 */
export default async function setup(project: TestProject): Promise<void> {
  await Promise.all([buildServer(), prepareEmbeddedTemplate()]);
  const migrations = await loadMigrations();
  const hash = createHash("sha256")
    .update(migrations.map((m) => m.checksum).join())
    .digest("hex")
    .slice(0, 12);
  const template = `shop_test_template_${hash}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect().catch((error: unknown) => {
    const where = new URL(ADMIN_URL);
    throw new Error(
      `npm test needs PostgreSQL at ${where.host} as ${where.username || "postgres"} (trust auth), or TEST_DATABASE_URL: ${String((error as Error).message)}`,
    );
  });
  try {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [template]);
    if (!rowCount) {
      const building = `${template}_building_${process.pid}`;
      await admin.query(`CREATE DATABASE "${building}"`);
      const db = openPostgres(databaseUrl(building), 2);
      try {
        await migrate(db);
      } finally {
        await db.close();
      }
      await admin.query(`ALTER DATABASE "${building}" RENAME TO "${template}"`).catch(async (error: unknown) => {
        await admin.query(`DROP DATABASE IF EXISTS "${building}"`);
        if (!String(error).includes("already exists")) throw error;
      });
    }
    // Databases of earlier runs that were killed before their cleanup. A file database carries
    // the pid of its vitest run: another run going on at the same time keeps its databases.
    const stale = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'shop_test_f_%' OR (datname LIKE 'shop_test_template_%' AND datname <> $1)`,
      [template],
    );
    // Another run going on (a checkout of other code) may be using its own template: those are
    // kept until no other run is alive.
    const runPids = stale.rows.map((r) => /^shop_test_f_(\d+)_/.exec(r.datname)?.[1]);
    const othersRunning = runPids.some((pid) => pid && Number(pid) !== process.pid && isAlive(Number(pid)));
    for (const [i, { datname }] of stale.rows.entries()) {
      const runPid = runPids[i];
      if (runPid ? isAlive(Number(runPid)) : othersRunning) continue;
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => undefined);
    }
  } finally {
    await admin.end();
  }
  project.provide("templateDatabase", template);
  project.provide("testRunPid", process.pid);
}

declare module "vitest" {
  export interface ProvidedContext {
    templateDatabase: string;
    testRunPid: number;
  }
}
