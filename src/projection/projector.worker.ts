// The projector in a worker thread of the API process (see projectorThread.ts): its own event
// loop, heap and connections, so request handling never delays a batch, nor a batch a request.
import { parentPort, workerData } from "node:worker_threads";
import { openPostgres } from "../db/postgres";
import { createLogger } from "../logger";
import { logSource } from "./logSource";
import { natsSource } from "./natsSource";
import { Projector } from "./projector";
import { allProjections } from "./projections";
import type { FromProjectorThread, ProjectorThreadData, ToProjectorThread } from "./projectorThread";

const data = workerData as ProjectorThreadData;
const post = (message: FromProjectorThread) => parentPort!.postMessage(message);
const logger = createLogger(data.logLevel).child({ thread: "projector" });
// Two projections side by side, the held-back check, and the leases' own session.
const db = openPostgres(data.readDatabaseUrl, 4, data.deadlines);
// The event log's reads and the held-back checks; the LISTEN wake-up has a connection of its own.
const log =
  data.source.kind !== "log"
    ? undefined
    : data.source.databaseUrl === data.readDatabaseUrl
      ? db
      : openPostgres(data.source.databaseUrl, 2, data.deadlines);
const stream = data.source.kind === "nats" ? natsSource(data.source.stream) : undefined;
const databases = [...new Set([db, log ?? db])];
const projector = new Projector(db, allProjections, {
  source: stream ?? logSource(log!),
  batchSize: data.batchSize,
  pollMs: data.pollMs,
  instanceId: data.instanceId,
  logger,
  observer: {
    onBatch: (projection, events, seconds) => post({ type: "batch", projection, events, seconds }),
    onFailed: (projection) => post({ type: "failed", projection }),
    onLeadership: (leading) => post({ type: "leadership", leading }),
  },
});

parentPort!.on("message", (message: ToProjectorThread) => {
  if (message.type !== "stop") return;
  void projector
    .stop()
    .then(() => Promise.all([stream?.close(), ...databases.map((d) => d.close())]))
    .finally(() => {
      post({ type: "stopped" });
      parentPort!.close();
    });
});

try {
  await projector.start();
  post({ type: "started" });
} catch (error) {
  post({ type: "startFailed", message: String((error as Error)?.stack ?? error) });
  await stream?.close().catch(() => undefined);
  await Promise.all(databases.map((d) => d.close().catch(() => undefined)));
  parentPort!.close();
}
