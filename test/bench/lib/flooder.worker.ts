import { randomUUID } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import { HttpGraphQL } from "./http";

// The flooding client, on a thread of its own so that its thousands of answers a second do not
// delay the measured client's timers and callbacks (they share nothing but the machine).

export interface FlooderWorkerData {
  url: string;
  token: string;
  productId: string;
  query: string;
  connections: number;
}

export interface FlooderReport {
  accepted: number;
  refused: number;
  seconds: number;
}

const data = workerData as FlooderWorkerData;
const client = new HttpGraphQL(data.url, data.connections);
let flooding = true;
let accepted = 0;
let refused = 0;
parentPort!.once("message", () => (flooding = false));
const started = performance.now();
await Promise.all(
  Array.from({ length: data.connections }, async () => {
    while (flooding) {
      const body = JSON.stringify({
        query: data.query,
        variables: { input: { idempotencyKey: randomUUID(), lines: [{ productId: data.productId, quantity: 1 }] } },
      });
      const res = await client.post(body, data.token);
      if (res.status === 429) refused += 1;
      else if (res.status === 200 && !res.errors?.length) accepted += 1;
      else throw new Error(`the flooder's request failed unexpectedly (${res.status}): ${JSON.stringify(res.errors)}`);
    }
  }),
);
client.close();
parentPort!.postMessage({ accepted, refused, seconds: (performance.now() - started) / 1000 } satisfies FlooderReport);
