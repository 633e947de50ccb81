import { resolve } from "node:path";
import type { Config } from "../config";
import type { Database } from "./database";
import { openEmbedded } from "./pglite";
import { openPostgres } from "./postgres";

/** DATABASE_URL set: that Postgres server. Unset: an embedded Postgres (PGlite) under DATA_DIR. */
export async function openDatabase(config: Pick<Config, "databaseUrl" | "dataDir" | "dbPoolSize">): Promise<Database> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, config.dbPoolSize);
  return openEmbedded(resolve(config.dataDir));
}
