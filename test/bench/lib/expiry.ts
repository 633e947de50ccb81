import { setTimeout as delay } from "node:timers/promises";
import { placeOrder, writePhase, type Bench, type Server, type WriteResult, type StartServer } from "./phases";
import { round } from "./stats";
import { SERVER } from "./processes";

export interface ExpiryResult {
  /** Orders left unpaid while no instance ran, expired by the next one at start-up. */
  backlog: number;
  seconds: number;
  expiriesPerSecond: number;
  /** placeOrder (GraphQL) against raw SQL at concurrency 32 on a server where every order expires a second after it is placed. */
  whileExpiring: WriteResult;
  writeRatioWhileExpiring: number;
  /** Orders of that GraphQL run that expired during the run (all of them, but for the last second's). */
  expiredDuringRun: number;
}

const duePlaced = async (bench: Bench) =>
  Number(
    (
      await bench.db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM "write".orders WHERE status = 'PLACED' AND expires_at <= now()`,
      )
    ).rows[0]!.n,
  );

const expiredCount = async (bench: Bench) =>
  Number(
    (
      await bench.db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM "write".events WHERE type = 'OrderCancelled' AND data->>'reason' = 'PAYMENT_TIMEOUT'`,
      )
    ).rows[0]!.n,
  );

/**
 * The order expiry's cost. (1) Its speed: `backlog` orders placed with a deadline, left to fall
 * due while no instance runs, then expired by an instance at start-up (from healthy to none due).
 * (2) Its effect on writes: the write measurement again on a server whose every order expires
 * a second after it is placed (the dispatcher busy all along), beside the write phase's ratio.
 */
export async function expiryPhase(
  bench: Bench,
  startServer: StartServer,
  stopServer: (server: Server) => Promise<void>,
  backlog: number,
): Promise<ExpiryResult> {
  const timeoutSeconds = Math.max(10, Math.ceil(backlog / 50)); // placing must end before the first deadline
  const env = { ORDER_PAYMENT_TIMEOUT_SECONDS: String(timeoutSeconds), READ_YOUR_WRITES_TIMEOUT_MS: "0" };
  const phaseStart = new Date();
  const placer = await startServer("server (expiry backlog)", SERVER, env);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < backlog) await placeOrder(bench, placer.gql, next++);
    }),
  );
  await stopServer(placer);
  const [{ last }] = (
    await bench.db.pool.query<{ last: Date }>(
      `SELECT max(expires_at) AS last FROM "write".orders WHERE status = 'PLACED' AND placed_at >= $1`,
      [phaseStart],
    )
  ).rows as [{ last: Date }];
  const dueInMs = new Date(last).getTime() - Date.now();
  bench.log(
    `expiry: ${backlog} orders placed; waiting ${Math.max(0, Math.round(dueInMs / 1000))} s for them all to fall due`,
  );
  if (dueInMs > 0) await delay(dueInMs + 100);
  const due = await duePlaced(bench);
  const expirer = await startServer("server (expiring the backlog)", SERVER, env);
  const started = performance.now();
  while ((await duePlaced(bench)) > 0) await delay(20);
  const seconds = (performance.now() - started) / 1000;
  await stopServer(expirer);
  bench.log(`  ${due} overdue orders expired in ${round(seconds, 2)} s: ${round(due / seconds, 0)}/s`);

  const busy = await startServer("server (every order expires after 1 s)", SERVER, {
    ORDER_PAYMENT_TIMEOUT_SECONDS: "1",
  });
  const before = await expiredCount(bench);
  const whileExpiring = await writePhase(bench, busy, [32]);
  const expiredDuringRun = (await expiredCount(bench)) - before;
  await stopServer(busy);
  return {
    backlog: due,
    seconds: round(seconds, 2),
    expiriesPerSecond: round(due / seconds, 0),
    whileExpiring,
    writeRatioWhileExpiring: whileExpiring.ratioAt[32]!,
    expiredDuringRun,
  };
}
