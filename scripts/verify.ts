// Checks the databases end to end (DATABASE_URL and READ_DATABASE_URL, or the embedded database when unset):
//   npm run verify                 recompute the read tables from the write model and the event log, print a diff
//   npm run verify -- --wait 30    wait up to 30 s (default 10) for the projections to catch up first
// Exit 0 only when everything agrees; 1 when there are problems; 2 on a usage or connection error.
// Read-only. The embedded database belongs to one process: stop the server before using this on it.
import { loadConfig } from "../src/config";
import { openDatabases, writeDatabase, type Databases } from "../src/db/open";
import { formatReport, verify } from "../src/verify/verify";

const args = process.argv.slice(2);
const waitAt = args.indexOf("--wait");
const waitSeconds = waitAt >= 0 ? Number(args[waitAt + 1]) : 10;
if (!Number.isFinite(waitSeconds) || waitSeconds < 0 || args.some((a, i) => a !== "--wait" && i !== waitAt + 1)) {
  console.error("usage: npm run verify [-- --wait <seconds>]");
  process.exit(2);
}

let dbs: Databases;
try {
  dbs = await openDatabases(loadConfig());
} catch (error) {
  console.error(`verify: cannot open the database: ${(error as Error).message}`);
  process.exit(2);
}
try {
  const result = await verify(writeDatabase(dbs), { waitMs: waitSeconds * 1000 }, dbs.read);
  console.log(formatReport(result));
  process.exitCode = result.ok ? 0 : 1;
} catch (error) {
  console.error(`verify: ${(error as Error).message}`);
  process.exitCode = 2;
} finally {
  await dbs.close();
}
