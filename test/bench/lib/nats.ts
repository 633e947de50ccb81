import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { round } from "./stats";
import type { LagResult } from "./phases";

export interface RelayCatchUp {
  events: number;
  seconds: number;
  eventsPerSecond: number;
}

export interface NatsResult {
  relayCatchUp: RelayCatchUp;
  /** placeOrder (one event each) over GraphQL at concurrency 32, from the write phase: the log's append rate. */
  logAppendEventsPerSecond: number | null;
  relayToAppendRatio: number | null;
  /** A NATS-fed query service filling an empty read database from the stream. */
  projectorFillEventsPerSecond: number;
  /** Commit → read_changed in the NATS-fed query service's read database. */
  lag: LagResult;
}

/**
 * Waits until the stream holds `events` messages and answers the relay's rate, from the times
 * JetStream stored the first and the last of them (so the relay's start-up does not count).
 */
export async function relayCatchUp(server: string, events: number, stream = "SHOP_EVENTS"): Promise<RelayCatchUp> {
  const nc = await connect({ servers: [server] });
  try {
    const jsm = await jetstreamManager(nc);
    const deadline = Date.now() + 600_000;
    for (;;) {
      const info = await jsm.streams.info(stream).catch(() => undefined);
      if (info && info.state.messages >= events) {
        const [first, last] = await Promise.all([
          jsm.streams.getMessage(stream, { seq: info.state.first_seq }),
          jsm.streams.getMessage(stream, { seq: info.state.first_seq + events - 1 }),
        ]);
        const seconds = Math.max((last!.time.getTime() - first!.time.getTime()) / 1000, 0.001);
        return { events, seconds: round(seconds, 2), eventsPerSecond: round(events / seconds, 0) };
      }
      if (Date.now() > deadline) throw new Error(`the relay did not publish ${events} events within 10 minutes`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await nc.close();
  }
}
