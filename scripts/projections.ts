// Operator CLI for projections (uses DATABASE_URL, or the embedded database when unset).
//   npm run projections -- status            checkpoint, lag and status of every projection
//   npm run projections -- rebuild <name>    rebuild from position 0 while the API serves the old rows, then swap
//   npm run projections -- retry <name>      after fixing the cause of a FAILED projection, let the projector resume it
// The embedded database belongs to one process: stop the server before using this on it.
import "reflect-metadata";
import { loadConfig } from "../src/config";
import { openDatabase } from "../src/db/open";
import { migrate } from "../src/db/migrate";
import { createLogger } from "../src/logger";
import { ensureCheckpoints, markRunning } from "../src/read/checkpoints";
import { allProjections } from "../src/read/projections";
import { ProjectionQueries } from "../src/read/queries/projections.queries";
import { rebuildProjection } from "../src/read/rebuild";
import { wakeProjectors } from "../src/read/projector";

const [command, name] = process.argv.slice(2);
const usage = "usage: npm run projections -- status | rebuild <name> | retry <name>";
const projection = allProjections.find((p) => p.name === name);
if (!command || (command !== "status" && !projection)) {
  console.error(name ? `unknown projection "${name}"; known: ${allProjections.map((p) => p.name).join(", ")}` : usage);
  process.exit(2);
}

const config = loadConfig();
const logger = createLogger(config.logLevel === "silent" ? "silent" : "info");
const db = await openDatabase(config);
try {
  await migrate(db);
  await ensureCheckpoints(db.prisma, allProjections.map((p) => p.name));
  if (command === "status") {
    console.table(await new ProjectionQueries(db).statuses());
  } else if (command === "rebuild") {
    const result = await rebuildProjection(db, projection!, { batchSize: Math.max(config.projectorBatchSize, 5000), logger });
    console.log(`rebuilt ${projection!.name}: ${result.events} events in ${result.seconds.toFixed(2)} s (${Math.round(result.events / Math.max(result.seconds, 0.001))} events/s)`);
  } else if (command === "retry") {
    const changed = await markRunning(db.prisma, projection!.name);
    await wakeProjectors(db.prisma);
    console.log(changed ? `${projection!.name} will resume from its checkpoint` : `${projection!.name} was not FAILED; nothing to do`);
  } else {
    console.error(usage);
    process.exitCode = 2;
  }
} finally {
  await db.close();
}
