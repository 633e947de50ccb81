// Operator CLI for projections (DATABASE_URL and READ_DATABASE_URL, or the embedded database when unset;
// with PROJECTOR_SOURCE=nats the events come from the stream, and READ_DATABASE_URL alone will do).
//   npm run projections -- status                      checkpoint, lag and status of every projection
//   npm run projections -- rebuild <name>... | --all   rebuild from position 0 while the API serves the old rows, then swap;
//                                                      several at once read the log once and apply it side by side
//   npm run projections -- retry <name>                after fixing the cause of a FAILED projection, let the projector resume it
// The embedded database belongs to one process: while a server holds it, `status` asks that
// server's API (serverApi.ts); a rebuild or a retry needs the server stopped.
import "reflect-metadata";
import { ConfigError, loadConfig } from "../src/config";
import { migrateDatabases, openDatabases, writeDatabase } from "../src/db/open";
import { createLogger } from "../src/logger";
import { ensureCheckpoints, listCheckpoints, markRunning } from "../src/projection/checkpoints";
import { allProjections } from "../src/projection/projections";
import { ProjectionQueries } from "../src/query/projections.queries";
import { measureLag } from "../src/projection/lag";
import { rebuildProjections } from "../src/projection/rebuild";
import { logSource, wakeProjectors } from "../src/projection/logSource";
import { natsSource } from "../src/projection/natsSource";
import { EmbeddedDatabaseInUse } from "../src/db/pglite";
import { ProjectionsDocument } from "../src/storefront/generated/graphql";
import { ScriptFailure, serverApi } from "./serverApi";

const [command, ...args] = process.argv.slice(2);
const usage = "usage: npm run projections -- status | rebuild <name>... | rebuild --all | retry <name>";
function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
if (
  !(command === "status"
    ? args.length === 0
    : command === "retry"
      ? args.length === 1
      : command === "rebuild" && args.length > 0)
)
  fail(usage);
const byName = (name: string) =>
  allProjections.find((p) => p.name === name) ??
  fail(`unknown projection "${name}"; known: ${allProjections.map((p) => p.name).join(", ")}`);
const projections = command === "rebuild" && args.join(" ") === "--all" ? allProjections : args.map(byName);
// Rows per batch of a rebuild: fewer, bigger statements (the catalog updates every product it
// touches once per batch); two batches are in memory at a time (one applied, the next read).
const REBUILD_BATCH_SIZE = 10_000;

const config = loadConfig();
const logger = createLogger(config.logLevel === "silent" ? "silent" : "info");
const dbs = await openDatabases(config).catch(async (error: unknown) => {
  if (!(error instanceof EmbeddedDatabaseInUse)) throw error;
  // A server holds the embedded database: its API answers `status` (as the `projections` query
  // does); a rebuild or a retry needs the database itself.
  if (command !== "status") {
    console.error(`${error.message}; only \`status\` can go through its API`);
    process.exit(1);
  }
  try {
    const { projections } = await serverApi(config, error, "projections").data(ProjectionsDocument, {}, "projections");
    console.table(projections);
  } catch (failure) {
    if (!(failure instanceof ScriptFailure || failure instanceof ConfigError)) throw failure;
    console.error(failure.message);
    process.exit(1);
  }
  process.exit(0);
});
const { read: db } = dbs;
// Where the events come from: the write database's log, or the event stream (PROJECTOR_SOURCE=nats).
const stream =
  config.projectorSource === "nats"
    ? natsSource({ servers: config.eventsNatsUrls, name: config.eventsStream, connectionName: "npm run projections" })
    : undefined;
const source = stream ?? logSource(writeDatabase(dbs));
try {
  await migrateDatabases(dbs);
  await ensureCheckpoints(
    db.sql,
    allProjections.map((p) => p.name),
  );
  if (command === "status") {
    // measured now, whether a projector runs or not
    await measureLag(db, source, await listCheckpoints(db.sql), "npm run projections");
    console.table(await new ProjectionQueries(db.prisma).statuses());
  } else if (command === "rebuild") {
    const result = await rebuildProjections(db, projections, {
      batchSize: Math.max(config.projectorBatchSize, REBUILD_BATCH_SIZE),
      logger,
      ...(stream ? { source: stream } : { log: writeDatabase(dbs) }),
    });
    const batches = result.perProjection.map((p) => `${p.name} ${p.batchSeconds.toFixed(2)} s`).join(", ");
    console.log(
      `rebuilt ${projections.map((p) => p.name).join(", ")}: ${result.events} events in ${result.seconds.toFixed(2)} s ` +
        `(${Math.round(result.events / Math.max(result.seconds, 0.001))} events/s; in batch transactions, side by side: ${batches})`,
    );
  } else {
    const [projection] = projections;
    const changed = await markRunning(db.prisma, projection!.name);
    // the projectors listen on the event log's database (those fed from the stream look on their next poll)
    if (dbs.write) await wakeProjectors(dbs.write.sql);
    console.log(
      changed
        ? `${projection!.name} will resume from its checkpoint`
        : `${projection!.name} was not FAILED; nothing to do`,
    );
  }
} finally {
  await stream?.close();
  await dbs.close();
}
