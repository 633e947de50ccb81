// npm run bench:round-trips
//
// Counts the round trips (client → Postgres socket flushes) of a command through the command bus
// and of a projector batch, on a database of its own. Exact, not timed: a round trip costs
// Postgres and the client a system call each way, whatever the machine, so this is what to count.
import { commandSettings, loadConfig } from "../../src/config";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { migrate } from "../../src/db/migrate";
import { openPostgres } from "../../src/db/postgres";
import { createLogger } from "../../src/logger";
import { ensureCheckpoints, listCheckpoints } from "../../src/projection/checkpoints";
import { logSource } from "../../src/projection/logSource";
import { ProjectionWorker } from "../../src/projection/projectionWorker";
import { allProjections } from "../../src/projection/projections";
import { systemClock, uuid } from "../../src/shared/clock";
import { createProduct } from "../../src/write/catalog/commands/createProduct";
import { CommandBus } from "../../src/write/commandBus";
import { payOrder } from "../../src/write/orders/commands/payOrder";
import { placeOrder } from "../../src/write/orders/commands/placeOrder";
import { createBenchDatabase } from "./lib/database";

const port = (url: string) => Number(new URL(url).port || 5432);

/** Counts writes to Postgres sockets; those made while a socket is corked leave as one, at its uncork. */
function flushCounter(dbPort: number) {
  let flushes = 0;
  let counting = false;
  const pending = new WeakSet<net.Socket>();
  const proto = net.Socket.prototype;
  const { write, uncork } = proto;
  proto.write = function (this: net.Socket, ...args: unknown[]) {
    if (counting && this.remotePort === dbPort) {
      if (this.writableCorked > 0) pending.add(this);
      else flushes += 1;
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof proto.write;
  proto.uncork = function (this: net.Socket) {
    if (counting && this.writableCorked === 1 && pending.delete(this)) flushes += 1;
    return uncork.apply(this);
  };
  return async (run: () => Promise<unknown>): Promise<number> => {
    flushes = 0;
    counting = true;
    try {
      await run();
      return flushes;
    } finally {
      counting = false;
    }
  };
}

const bench = await createBenchDatabase();
const db = openPostgres(bench.url, 4);
try {
  await migrate(db);
  const count = flushCounter(port(bench.url));
  const bus = new CommandBus(db, systemClock, uuid, commandSettings(loadConfig()));
  const admin = { kind: "user", id: "ops", role: "admin" } as const;
  const alice = { kind: "user", id: "alice", role: "customer" } as const;
  const options = { correlationId: "round-trips" };
  const { result } = await bus.dispatch(
    createProduct,
    { sku: randomUUID(), name: "Cup", priceCents: 100, initialStock: 1_000 },
    admin,
    options,
  );
  const order = () => ({ idempotencyKey: randomUUID(), lines: [{ productId: result.productId, quantity: 1 }] });
  await bus.dispatch(placeOrder, order(), alice, options); // statements prepared on a connection

  let orderId = "";
  const place = await count(async () => {
    orderId = (await bus.dispatch(placeOrder, order(), alice, options)).result.orderId;
  });
  const pay = await count(() => bus.dispatch(payOrder, { orderId }, admin, options));

  const worker = new ProjectionWorker(db, allProjections[1]!, logSource(db), {
    batchSize: 500,
    logger: createLogger("silent"),
  });
  await ensureCheckpoints(db.sql, [worker.projection.name]);
  const from = (await listCheckpoints(db.sql)).find((c) => c.name === worker.projection.name)!;
  const batch = await count(() => worker.run(from, () => false));

  console.table([
    { what: "placeOrder (claim the key, load, save, append)", roundTrips: place },
    { what: "payOrder (with no key)", roundTrips: pay },
    { what: "a projector batch of the orders projection", roundTrips: batch },
  ]);
} finally {
  await db.close();
  await bench.drop();
}
