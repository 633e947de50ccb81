// Checks the databases end to end (DATABASE_URL and READ_DATABASE_URL, or the embedded database when unset):
//   npm run verify                 recompute the read tables from the write model and the event log, print a diff
//   npm run verify -- --wait 30    wait up to 30 s (default 10) for the projections to catch up first
// Exit 0 only when everything agrees; 1 when there are problems; 2 on a usage or connection error.
// Read-only. The embedded database belongs to one process: while a server holds it, that server
// runs the check for us (serverApi.ts).
import { loadConfig } from "../src/config";
import { openDatabases, type Databases } from "../src/db/open";
import { EmbeddedDatabaseInUse } from "../src/db/pglite";
import { verifyDatabases, type OperatorOutcome } from "../src/operator/commands";
import { ScriptFailure, serverApi } from "./serverApi";

const args = process.argv.slice(2);
const waitAt = args.indexOf("--wait");
const waitSeconds = waitAt >= 0 ? Number(args[waitAt + 1]) : 10;
if (!Number.isFinite(waitSeconds) || waitSeconds < 0 || args.some((a, i) => a !== "--wait" && i !== waitAt + 1)) {
  console.error("usage: npm run verify [-- --wait <seconds>]");
  process.exit(2);
}

/** The check's outcome: on the databases opened here, or by the server that holds the embedded one. */
async function check(): Promise<OperatorOutcome> {
  const config = loadConfig();
  let dbs: Databases;
  try {
    dbs = await openDatabases(config);
  } catch (error) {
    if (error instanceof EmbeddedDatabaseInUse)
      return serverApi(config, error, "verify").operator("verify", { waitSeconds });
    throw new ScriptFailure(`cannot open the database: ${(error as Error).message}`);
  }
  try {
    return await verifyDatabases(dbs, waitSeconds * 1000);
  } finally {
    await dbs.close();
  }
}

try {
  const outcome = await check();
  console.log(outcome.report);
  process.exitCode = outcome.ok ? 0 : 1;
} catch (error) {
  console.error(`verify: ${(error as Error).message}`);
  process.exitCode = 2;
}
