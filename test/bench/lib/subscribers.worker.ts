// A worker thread holding a share of the benchmark's graphql-ws clients, so that receiving
// 1,000 pushes is not serialized on the event loop of the process that measures.
import { parentPort, workerData } from "node:worker_threads";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

export interface SubscriberWorkerData {
  wsUrl: string;
  count: number;
  productId: string;
  /** Clients with index % filteredEvery === 0 subscribe with productIds: [productId], the rest to every product. */
  filteredEvery: number;
}

export type SubscriberWorkerMessage =
  | { type: "connected"; connected: number; failed: number }
  | { type: "deliveries"; records: [number, number][] }
  | { type: "errors"; message: string }
  | { type: "closed" };

const SUBSCRIPTION = `subscription InventoryChanged($productIds: [ID!]) {
  inventoryChanged(productIds: $productIds) { id sku name description priceCents available inStock unitsSold updatedAt }
}`;

const data = workerData as SubscriberWorkerData;
const port = parentPort!;
const clients: Client[] = [];
/** [receive time (ms, timeOrigin + now), available] per push. */
let records: [number, number][] = [];
let failed = 0;

function connectOne(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const client = createClient({
      url: data.wsUrl,
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      on: { connected: () => resolve(true), closed: () => resolve(false), error: () => resolve(false) },
    });
    clients.push(client);
    client.subscribe<{ inventoryChanged: { available: number } }>(
      { query: SUBSCRIPTION, variables: i % data.filteredEvery === 0 ? { productIds: [data.productId] } : {} },
      {
        next: (result) => {
          const t = performance.timeOrigin + performance.now();
          const available = result.data?.inventoryChanged.available;
          if (available !== undefined) records.push([t, available]);
        },
        error: (error) =>
          port.postMessage({
            type: "errors",
            message: String((error as Error)?.message ?? JSON.stringify(error)),
          } satisfies SubscriberWorkerMessage),
        complete: () => undefined,
      },
    );
  });
}

async function main(): Promise<void> {
  const BATCH = 50;
  let connected = 0;
  for (let i = 0; i < data.count; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, data.count - i) }, (_, j) => connectOne(i + j)),
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
  void Promise.all(clients.map((c) => c.dispose())).finally(() => {
    port.postMessage({ type: "closed" } satisfies SubscriberWorkerMessage);
    port.close();
  });
});

void main();
