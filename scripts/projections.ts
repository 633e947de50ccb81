// Operator CLI for projections (DATABASE_URL and READ_DATABASE_URL, or the embedded database when unset;
// with PROJECTOR_SOURCE=nats the events come from the stream, and READ_DATABASE_URL alone will do).
//   npm run projections -- status                      checkpoint, lag and status of every projection
//   npm run projections -- rebuild <name>... | --all   rebuild from position 0 while the API serves the old rows, then swap;
//                                                      several at once read the log once and apply it side by side
//   npm run projections -- retry <name>                after fixing the cause of a FAILED projection, let the projector resume it
// The embedded database belongs to one process: while a server holds it, this goes through that
// server (serverApi.ts): `status` as the `projections` query, a rebuild or a retry as an operator
// command the server runs (src/operator/commands.ts).
import "reflect-metadata";
import { ConfigError, loadConfig } from "../src/config";
import { migrateDatabases, openDatabases, writeDatabase } from "../src/db/open";
import { createLogger } from "../src/logger";
import { ensureCheckpoints, listCheckpoints } from "../src/projection/checkpoints";
import { allProjections } from "../src/projection/projections";
import { ProjectionQueries } from "../src/query/projections.queries";
import { measureLag } from "../src/projection/lag";
import { logSource } from "../src/projection/logSource";
import { natsSource } from "../src/projection/natsSource";
import { EmbeddedDatabaseInUse } from "../src/db/pglite";
import { projectionsNamed, rebuild, retry, type OperatorOutcome } from "../src/operator/commands";
import { AppError } from "../src/shared/errors";
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
function named(names: string[]) {
  try {
    return projectionsNamed(names);
  } catch (error) {
    if (error instanceof AppError) fail(error.message);
    throw error;
  }
}
const projections = command === "status" ? [] : named(args);
const names = projections.map((p) => p.name);

const config = loadConfig();
const logger = createLogger(config.logLevel === "silent" ? "silent" : "info");
const dbs = await openDatabases(config).catch(async (error: unknown) => {
  if (!(error instanceof EmbeddedDatabaseInUse)) throw error;
  // A server holds the embedded database: it answers `status` (as the `projections` query
  // does) and runs a rebuild or a retry for us.
  try {
    const api = serverApi(config, error, "projections");
    if (command === "status") {
      console.table((await api.data(ProjectionsDocument, {}, "projections")).projections);
      process.exit(0);
    }
    const outcome =
      command === "rebuild"
        ? await api.operator("rebuild", { projections: names })
        : await api.operator("retry", { projection: names[0] });
    console.log(outcome.report);
    process.exit(outcome.ok ? 0 : 1);
  } catch (failure) {
    if (!(failure instanceof ScriptFailure || failure instanceof ConfigError)) throw failure;
    console.error(failure.message);
    process.exit(1);
  }
});
const { read: db } = dbs;
// Where the events come from: the write database's log, or the event stream (PROJECTOR_SOURCE=nats).
const stream =
  config.projectorSource === "nats"
    ? natsSource({ servers: config.eventsNatsUrls, name: config.eventsStream, connectionName: "npm run projections" })
    : undefined;
try {
  await migrateDatabases(dbs);
  await ensureCheckpoints(
    db.sql,
    allProjections.map((p) => p.name),
  );
  let outcome: OperatorOutcome | undefined;
  if (command === "status") {
    // measured now, whether a projector runs or not
    await measureLag(db, stream ?? logSource(writeDatabase(dbs)), await listCheckpoints(db.sql), "npm run projections");
    console.table(await new ProjectionQueries(db.prisma).statuses());
  } else if (command === "rebuild") {
    outcome = await rebuild(dbs, projections, { batchSize: config.projectorBatchSize, logger, stream });
  } else {
    outcome = await retry(dbs, projections[0]!);
  }
  if (outcome) console.log(outcome.report);
} finally {
  await stream?.close();
  await dbs.close();
}
