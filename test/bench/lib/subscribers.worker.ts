// A worker thread holding a share of the benchmark's subscribers, so that receiving thousands of
// pushes is not serialized on the event loop of the process that measures.
//
// Two clients: graphql-ws's own (`createClient`, what a storefront runs), and a lean one that
// speaks the same protocol (graphql-transport-ws) over a bare `ws` socket and only parses each
// message. With thousands of subscribers on the machine that also runs the server, what the
// client costs per message is part of every delivery time measured: the lean client keeps that
// share small, so the curve shows the server's cost.
import { parentPort, workerData } from "node:worker_threads";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

export interface SubscriberWorkerData {
  wsUrl: string;
  count: number;
  /** The index of this worker's first subscriber among all of the phase's. */
  firstIndex: number;
  /**
   * Which products subscriber i watches: `everyOther`: productIds[0] for even i, every product
   * for odd i (the storefront's pattern: a product page and a catalog page); `own`: only
   * productIds[i % productIds.length] (one product page per tab).
   */
  pattern: "everyOther" | "own";
  productIds: string[];
  client: "graphql-ws" | "lean";
}

export type SubscriberWorkerMessage =
  | { type: "connected"; connected: number; failed: number }
  /** [receive time (ms, timeOrigin + now), available, subscriber index] per push. */
  | { type: "deliveries"; records: [number, number, number][] }
  | { type: "errors"; message: string }
  | { type: "closed" };

const SUBSCRIPTION = `subscription InventoryChanged($productIds: [ID!]) {
  inventoryChanged(productIds: $productIds) { id sku name description priceCents available inStock unitsSold updatedAt }
}`;

interface Push {
  inventoryChanged: { available: number };
}

const data = workerData as SubscriberWorkerData;
const port = parentPort!;
const closers: (() => Promise<void>)[] = [];
let records: [number, number, number][] = [];
let failed = 0;

const variablesOf = (i: number) => {
  if (data.pattern === "own") return { productIds: [data.productIds[i % data.productIds.length]!] };
  return i % 2 === 0 ? { productIds: [data.productIds[0]!] } : {};
};

const received = (i: number, available: number | undefined) => {
  if (available !== undefined) records.push([performance.timeOrigin + performance.now(), available, i]);
};

const reportError = (message: string) =>
  port.postMessage({ type: "errors", message } satisfies SubscriberWorkerMessage);

function connectGraphqlWs(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const client: Client = createClient({
      url: data.wsUrl,
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      on: { connected: () => resolve(true), closed: () => resolve(false), error: () => resolve(false) },
    });
    closers.push(() => client.dispose() as Promise<void>);
    client.subscribe<Push>(
      { query: SUBSCRIPTION, variables: variablesOf(i) },
      {
        next: (result) => received(i, result.data?.inventoryChanged.available),
        error: (error) => reportError(String((error as Error)?.message ?? JSON.stringify(error))),
        complete: () => undefined,
      },
    );
  });
}

/** graphql-transport-ws by hand: connection_init, subscribe once acknowledged, then parse each next. */
function connectLean(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new WebSocket(data.wsUrl, "graphql-transport-ws", { perMessageDeflate: false });
    closers.push(
      () =>
        new Promise<void>((done) => {
          if (socket.readyState === WebSocket.CLOSED) return done();
          socket.once("close", () => done());
          socket.close(1000);
        }),
    );
    socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init" })));
    socket.on("error", () => resolve(false));
    socket.on("close", () => resolve(false));
    socket.on("message", (raw: Buffer) => {
      const message = JSON.parse(raw.toString("utf8")) as {
        type: string;
        payload?: { data?: Push; errors?: unknown[] } | unknown[];
      };
      switch (message.type) {
        case "connection_ack":
          socket.send(
            JSON.stringify({ id: "1", type: "subscribe", payload: { query: SUBSCRIPTION, variables: variablesOf(i) } }),
          );
          resolve(true);
          break;
        case "next": {
          const payload = message.payload as { data?: Push; errors?: unknown[] };
          if (payload.errors) reportError(JSON.stringify(payload.errors));
          received(i, payload.data?.inventoryChanged.available);
          break;
        }
        case "ping":
          socket.send(JSON.stringify({ type: "pong" }));
          break;
        case "error":
          reportError(JSON.stringify(message.payload));
          break;
      }
    });
  });
}

async function main(): Promise<void> {
  const BATCH = 50;
  const connect = data.client === "lean" ? connectLean : connectGraphqlWs;
  let connected = 0;
  for (let i = 0; i < data.count; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, data.count - i) }, (_, j) => connect(data.firstIndex + i + j)),
    );
    for (const ok of batch) {
      if (ok) connected += 1;
      else failed += 1;
    }
  }
  port.postMessage({ type: "connected", connected, failed } satisfies SubscriberWorkerMessage);
  setInterval(() => {
    if (records.length === 0) return;
    port.postMessage({ type: "deliveries", records } satisfies SubscriberWorkerMessage);
    records = [];
  }, 20).unref();
}

port.on("message", (message: { type: "close" }) => {
  if (message.type !== "close") return;
  void Promise.all(closers.map((close) => close())).finally(() => {
    port.postMessage({ type: "closed" } satisfies SubscriberWorkerMessage);
    port.close();
  });
});

void main();
