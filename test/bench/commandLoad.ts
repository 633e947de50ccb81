// npm run bench:commands
//
// placeOrder through the command bus alone (no HTTP, no GraphQL, no projector) on a database of
// its own: orders per second and the CPU each order costs this process and Postgres (all
// postgres processes of the machine, read from /proc: run it on an otherwise quiet machine, and
// compare code side by side in one sitting).
import { commandSettings, loadConfig } from "../../src/config";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { migrate } from "../../src/db/migrate";
import { openPostgres } from "../../src/db/postgres";
import { systemClock, uuid } from "../../src/shared/clock";
import { createProduct } from "../../src/write/catalog/commands/createProduct";
import { CommandBus } from "../../src/write/commandBus";
import { placeOrder } from "../../src/write/orders/commands/placeOrder";
import { createBenchDatabase } from "./lib/database";

const ORDERS = 10_000;
const CONCURRENCY = 16;
const PRODUCTS = 200;
const TICK_MS = 10; // /proc's clock ticks (USER_HZ 100)

/** CPU time of every postgres process, in ms. */
function postgresCpuMs(): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (!stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).startsWith("postgres")) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks * TICK_MS;
}

const bench = await createBenchDatabase();
const db = openPostgres(bench.url, 20);
try {
  await migrate(db);
  const bus = new CommandBus(db, systemClock, uuid, commandSettings(loadConfig()));
  const admin = { kind: "user", id: "ops", role: "admin" } as const;
  const options = { correlationId: "command-load" };
  const products: string[] = [];
  for (let i = 0; i < PRODUCTS; i++) {
    const input = { sku: randomUUID(), name: "Cup", priceCents: 100, initialStock: 1_000_000 };
    products.push((await bus.dispatch(createProduct, input, admin, options)).result.productId);
  }
  const place = async (n: number) => {
    let next = 0;
    const client = async (c: number) => {
      const customer = { kind: "user", id: `customer-${c}`, role: "customer" } as const;
      while (next < n) {
        const productId = products[next++ % PRODUCTS]!;
        await bus.dispatch(
          placeOrder,
          { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] },
          customer,
          options,
        );
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, c) => client(c)));
  };
  await place(ORDERS / 5); // warm-up: statements prepared, pool filled
  const rows = [];
  for (let round = 1; round <= 3; round++) {
    const cpu = process.cpuUsage();
    const postgres = postgresCpuMs();
    const started = performance.now();
    await place(ORDERS);
    const seconds = (performance.now() - started) / 1000;
    const { user, system } = process.cpuUsage(cpu);
    rows.push({
      round,
      "orders/s": Math.round(ORDERS / seconds),
      "this process, ms CPU/order": +((user + system) / 1000 / ORDERS).toFixed(3),
      "postgres, ms CPU/order": +((postgresCpuMs() - postgres) / ORDERS).toFixed(3),
    });
  }
  console.table(rows);
} finally {
  await db.close();
  await bench.drop();
}
