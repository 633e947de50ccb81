import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { Socket } from "node:net";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { setupFile, startTestApp, type TestApp } from "../support/app";
import { documentOf, token, type GqlError } from "../support/client";
import { eventually } from "../support/wait";
import pg from "pg";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  OrdersDocument,
  ProductDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// The limits that keep one client from hurting the others (README, "Configuration").

let t: Awaited<ReturnType<typeof setupFile>>;
let productId: string;
beforeAll(async () => {
  t = await setupFile({ mutationsPerSecond: 2, mutationBurst: 3 });
  const { createProduct } = await t.anonymous.as(token("admin", "setup")).ok(CreateProductDocument, {
    input: { sku: `LIM-${randomUUID().slice(0, 8)}`, name: "Limited", priceCents: 100, initialStock: 1 },
  });
  productId = createProduct.product!.id;
});
afterAll(async () => t?.teardown());

const restockBody = JSON.stringify({
  query: `mutation($id: ID!) { restockProduct(input: { productId: $id, quantity: 1 }) { position } }`,
});

async function restock(sub: string) {
  const res = await fetch(`${t.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token("admin", sub)}` },
    body: JSON.stringify({ ...JSON.parse(restockBody), variables: { id: productId } }),
  });
  const body = (await res.json()) as { errors?: { extensions?: { code?: string; retryAfterSeconds?: number } }[] };
  return { status: res.status, retryAfter: res.headers.get("retry-after"), error: body.errors?.[0]?.extensions };
}

const eventCount = async () => (await t.db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM "write".events`))[0]!.n;

describe("mutations per actor (MUTATIONS_PER_SECOND=2, MUTATION_BURST=3)", () => {
  it("refuses the flooding actor with RATE_LIMITED, 429 and Retry-After, writes nothing, leaves the others alone, and lets it go on later", async () => {
    const flood = await Promise.all(Array.from({ length: 5 }, () => restock("flooder")));
    const accepted = flood.filter((r) => r.status === 200 && !r.error);
    const limited = flood.filter((r) => r.error?.code === "RATE_LIMITED");
    expect(accepted).toHaveLength(3);
    expect(limited).toHaveLength(2);
    for (const r of limited) {
      expect(r.status).toBe(429);
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r.error?.retryAfterSeconds).toBe(Number(r.retryAfter));
    }
    // Refused before the command: nothing written (a refusal is answered after a pause, the
    // bucket refilling meanwhile, so some of a second flood get through: exactly those write).
    const events = await eventCount();
    const again = await Promise.all(Array.from({ length: 6 }, () => restock("flooder")));
    expect(again.some((r) => r.error?.code === "RATE_LIMITED")).toBe(true);
    expect(await eventCount()).toBe(events + again.filter((r) => r.status === 200 && !r.error).length);

    // Another actor on the same instance is not slowed by it.
    expect(await restock("bystander")).toMatchObject({ status: 200, error: undefined });

    // Over graphql-ws too, with the same code and wait.
    const ws = t.anonymous.as(token("admin", "flooder")).ws();
    const overWs = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<Record<string, unknown> | undefined>((resolve, reject) =>
            ws.subscribe(
              { ...JSON.parse(restockBody), variables: { id: productId } },
              { next: (r) => resolve(r.errors?.[0]?.extensions), error: reject, complete: () => resolve(undefined) },
            ),
          ),
      ),
    );
    expect(overWs.find((e) => e?.code === "RATE_LIMITED")).toMatchObject({ retryAfterSeconds: expect.any(Number) });
    await ws.dispose();

    // After the wait it says, the actor goes on.
    await eventually(async () => (await restock("flooder")).status === 200, {
      timeoutMs: 5000,
      intervalMs: 250,
      what: "the flooding actor's bucket to refill",
    });
  });
});

// One instance with small limits on sockets and query time, beside the file's own.
const LIMITS = {
  subscriptionsPerSocket: 3,
  socketsPerActor: 2,
  socketsPerIp: 2,
  messageBytes: 2048,
  connectionInitTimeoutMs: 300,
  trustProxyHops: 1, // behind one proxy: each test names its own client address in X-Forwarded-For
};
let edge: TestApp;
beforeAll(async () => {
  edge = await startTestApp(t.db, {
    socketLimits: LIMITS,
    queryStatementTimeoutMs: 300,
    runProjector: false,
    // The query-side statements are what the timeout test holds: no result cache answers in front of them.
    catalogResultCacheEntries: 0,
  });
});
afterAll(async () => edge?.stop());

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const socket of opened.splice(0)) socket.close();
});

/** A graphql-ws client from `address` (as the proxy in front says), signed in as `bearer` if given. */
function clientFrom(address: string, bearer?: string): Client {
  class FromAddress extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { "x-forwarded-for": `203.0.113.250, ${address}` } });
    }
  }
  const client = createClient({
    url: `${edge.url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: FromAddress,
    connectionParams: bearer ? { authorization: `Bearer ${bearer}` } : {},
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => undefined, // the tests look at how each socket closes
  });
  opened.push({ close: () => void client.dispose() });
  return client;
}

/** How a socket from `address` ends: its close code, once the server closes it. */
function rawSocket(address: string): { socket: WebSocket; closed: Promise<number> } {
  const socket = new WebSocket(`${edge.url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws", {
    headers: { "x-forwarded-for": address },
  });
  opened.push(socket);
  return { socket, closed: new Promise((resolve) => socket.once("close", (code) => resolve(code))) };
}

const connected = (client: Client) =>
  new Promise<void>((resolve, reject) => {
    client.on("connected", () => resolve());
    client.on("closed", (e) => reject(new Error(`closed with ${(e as { code?: number }).code}`)));
  });
const closeCode = (client: Client) =>
  new Promise<number>((resolve) => client.on("closed", (e) => resolve((e as { code: number }).code)));

/** The first thing a product lookup over graphql-ws answers: its data, or its error's code. */
function firstAnswer(client: Client) {
  return new Promise<{ code?: unknown; data?: unknown }>((resolve) =>
    client.subscribe(
      { query: "", ...documentOf(ProductDocument), variables: { id: productId } },
      {
        next: (r) => resolve(r.errors ? { code: r.errors[0]?.extensions?.code } : { data: r.data }),
        error: (e) => resolve({ code: Array.isArray(e) ? (e[0] as GqlError).extensions?.code : String(e) }),
        complete: () => resolve({}),
      },
    ),
  );
}

describe("active subscriptions per socket (MAX_SUBSCRIPTIONS_PER_SOCKET=3)", () => {
  it("refuses a fourth on one socket with LIMIT_EXCEEDED, takes one again after one ends, and leaves other sockets alone", async () => {
    const client = clientFrom("198.51.100.1", token("customer", "subs-a"));
    const watch = () => {
      const answers: unknown[] = [];
      const stop = client.subscribe(
        { query: "", ...documentOf(InventoryChangedDocument), variables: { productIds: [productId] } },
        { next: (r) => void answers.push(r), error: (e) => void answers.push(e), complete: () => undefined },
      );
      return { answers, stop };
    };
    const three = [watch(), watch(), watch()];
    const fourth = watch();
    await eventually(() => fourth.answers.length > 0, { what: "the fourth subscription's answer" });
    expect((fourth.answers[0] as GqlError[])[0]?.extensions).toMatchObject({ code: "LIMIT_EXCEEDED", limit: 3 });
    expect(three.every((s) => s.answers.length === 0)).toBe(true); // the three are still live

    const other = clientFrom("198.51.100.2", token("customer", "subs-b"));
    expect((await firstAnswer(other)).data).toMatchObject({ product: { id: productId } });

    three[0]!.stop();
    const again = watch();
    await eventually(async () => (await restock("subs-restocker")).status === 200 && again.answers.length > 0, {
      what: "a push to the subscription that took the ended one's place",
    });
    expect(again.answers[0]).toMatchObject({ data: { inventoryChanged: { id: productId } } });
  });
});

describe("sockets per actor (MAX_SOCKETS_PER_ACTOR=2) and per address (MAX_SOCKETS_PER_IP=2)", () => {
  it("closes an actor's third socket with 1013 (try again later), lets another actor in, and the actor again once one closes", async () => {
    const bearer = token("customer", "many-tabs");
    const first = clientFrom("198.51.100.10", bearer);
    const second = clientFrom("198.51.100.11", bearer);
    await Promise.all([connected(first), connected(second)]);
    expect(await closeCode(clientFrom("198.51.100.12", bearer))).toBe(1013);
    await connected(clientFrom("198.51.100.13", token("customer", "one-tab")));

    await first.dispose();
    await eventually(
      async () => {
        const next = clientFrom("198.51.100.14", bearer);
        return connected(next).then(
          () => true,
          () => false,
        );
      },
      { what: "a socket of the actor once one of its two closed" },
    );
  });

  it("closes an address's third socket, initialised or not, and believes only the proxy's entry of X-Forwarded-For", async () => {
    const a = rawSocket("198.51.100.20");
    const b = rawSocket("10.9.9.9, 198.51.100.20"); // what the client wrote itself (10.9.9.9) is not its address
    await Promise.all([a, b].map(({ socket }) => new Promise((r) => socket.once("open", r))));
    expect(await rawSocket("198.51.100.20").closed).toBe(1013);
    await connected(clientFrom("198.51.100.21"));
  });
});

describe("graphql-ws messages (WS_MAX_MESSAGE_BYTES=2048) and connection_init (WS_CONNECTION_INIT_TIMEOUT_MS=300)", () => {
  it("closes a socket that sends a larger message with 1009, and only that socket", async () => {
    const bystander = clientFrom("198.51.100.30");
    await connected(bystander);
    const big = clientFrom("198.51.100.31");
    await connected(big);
    const closed = closeCode(big);
    big.subscribe(
      { query: `{ __typename ${" ".repeat(4096)}}` },
      { next: () => undefined, error: () => undefined, complete: () => undefined },
    );
    expect(await closed).toBe(1009);
    expect((await firstAnswer(bystander)).data).toMatchObject({ product: { id: productId } });
  });

  it("closes a socket that never sends connection_init with 4408, and only that socket", async () => {
    const bystander = clientFrom("198.51.100.40");
    await connected(bystander);
    const silent = rawSocket("198.51.100.41");
    expect(await silent.closed).toBe(4408);
    expect((await firstAnswer(bystander)).data).toMatchObject({ product: { id: productId } });
  });
});

describe("query-side statements (QUERY_STATEMENT_TIMEOUT_MS=300)", () => {
  it("cancels a query held past the limit with QUERY_TIMEOUT (retryable), while other queries go on", async () => {
    // A maintenance job holds the catalog's read table: a catalog query waits on it, and no longer than the limit.
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      await holder.query(`BEGIN; LOCK TABLE "read".products IN ACCESS EXCLUSIVE MODE`);
      const started = Date.now();
      const held = await edge.anonymous.request(ProductDocument, { id: productId });
      expect(held.errors?.[0]?.extensions).toMatchObject({ code: "QUERY_TIMEOUT", retryable: true });
      expect(Date.now() - started).toBeLessThan(5000);
      const orders = await edge.admin.request(OrdersDocument, { first: 1 });
      expect(orders.errors).toBeUndefined();
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      await holder.end();
    }
    const free = await edge.anonymous.request(ProductDocument, { id: productId });
    expect(free.data?.product?.id).toBe(productId);
  });
});

describe("an actor's commands at once (MUTATION_CONCURRENCY=2)", () => {
  it("runs two of an actor's commands at a time, the others waiting their turn, and leaves the pool to the others", async () => {
    // Its read-back is short: the projector is held back by the transactions this test holds open.
    const narrow = await startTestApp(t.db, {
      mutationConcurrency: 2,
      runProjector: false,
      readYourWritesTimeoutMs: 500,
    });
    const admin = narrow.anonymous.as(token("admin", "setup"));
    const products = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const { createProduct } = await admin.ok(CreateProductDocument, {
          input: { sku: `CONC-${i}-${randomUUID().slice(0, 8)}`, name: `Held ${i}`, priceCents: 100, initialStock: 1 },
        });
        return createProduct.product!.id;
      }),
    );
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      // Their stock held by another transaction: each restock waits on it, in Postgres.
      await holder.query("BEGIN");
      await holder.query(`SELECT * FROM "write".inventory WHERE product_id = ANY($1::uuid[]) FOR UPDATE`, [products]);
      const waitingInPostgres = async () =>
        (
          await holder.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          )
        ).rows[0]!.n;
      const eager = narrow.anonymous.as(token("admin", "eager"));
      const restocks = products.map((productId) =>
        eager.request(RestockProductDocument, { input: { productId, quantity: 1 } }),
      );
      await eventually(async () => (await waitingInPostgres()) === 2, { what: "two restocks waiting in Postgres" });
      // Another actor's command runs meanwhile (committed: its read-back may wait, the projector
      // being held behind the open transactions), and the eager one still has two under way, not six.
      const other = await narrow.anonymous.as(token("admin", "other")).request(CreateProductDocument, {
        input: { sku: `LIM-${randomUUID().slice(0, 8)}`, name: "Other", priceCents: 100, initialStock: 1 },
      });
      expect(other.errors).toBeUndefined();
      expect(other.data?.createProduct.position).toMatch(/^\d+$/);
      expect(await waitingInPostgres()).toBe(2);
      await holder.query("COMMIT");
      for (const res of await Promise.all(restocks)) expect(res.errors).toBeUndefined();
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      await holder.end();
      await narrow.stop();
    }
  });
});

/** One keep-alive request on a socket of its own: the answer's Keep-Alive header, and the socket. */
function keptAlive(url: string): Promise<{ keepAlive: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = http.get(`${url}/healthz`, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ keepAlive: String(res.headers["keep-alive"]), socket: req.socket! }));
    });
    req.on("error", reject);
  });
}

describe("idle keep-alive connections (HTTP_KEEP_ALIVE_TIMEOUT_MS)", () => {
  it("stay open 65 s by default, past a load balancer's usual 60, and the server says so", async () => {
    const { keepAlive, socket } = await keptAlive(t.url);
    expect(keepAlive).toBe("timeout=65");
    socket.destroy();
  });

  it("are closed by the server once idle that long", async () => {
    const brief = await startTestApp(t.db, { httpKeepAliveTimeoutMs: 1000, runProjector: false });
    try {
      const { keepAlive, socket } = await keptAlive(brief.url);
      expect(keepAlive).toBe("timeout=1");
      let closed = false;
      socket.on("close", () => (closed = true));
      await eventually(() => closed, { timeoutMs: 5000, what: "the server to close the idle connection" });
    } finally {
      await brief.stop();
    }
  });
});
