import "reflect-metadata";
import { startApp } from "./app";
import { ConfigError, loadConfig, type Config } from "./config";
import { EmbeddedDatabaseInUse } from "./db/pglite";
import { createLogger } from "./logger";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const app = await startApp(config, { logger }).catch((error: unknown) => {
    const reason = plainReason(error, config);
    if (!reason) throw error;
    console.error(reason);
    process.exit(1);
  });

  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, "shutting down: draining requests, stopping the projector");
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

/** Start-up failures an operator fixes outside the code, said in one line (the others keep their stack). */
function plainReason(error: unknown, config: Config): string | undefined {
  if (error instanceof EmbeddedDatabaseInUse) return error.message;
  const { code, message, address, port, hostname } = error as NodeJS.ErrnoException & {
    address?: string;
    port?: number;
    hostname?: string;
  };
  if (code === "EADDRINUSE")
    return `port ${config.port} is in use: stop what listens on it, or start with another PORT`;
  const databases = "DATABASE_URL / READ_DATABASE_URL";
  if (code === "ECONNREFUSED" || code === "ETIMEDOUT" || code === "EHOSTUNREACH")
    return `no database answers at ${address ? `${address}:${port}` : "its address"} (${code}): start Postgres there, or fix ${databases}`;
  if (code === "ENOTFOUND") return `the database host ${hostname} is not found: fix ${databases}`;
  // Postgres refusing the connection: no such database, a wrong password or user.
  if (code === "3D000" || code === "28P01" || code === "28000") return `${message}: fix ${databases}`;
  return undefined;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
