// Self-test of test/support/natsServer.ts: private nats-server processes with JetStream, a file
// stream that survives a stop and a crash, and a 3-node cluster that keeps an R3 stream going
// when its stream leader is killed.
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
} from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { startNats, startNatsCluster, stopAllNats, type NatsServer } from "../support/natsServer";
import { eventually } from "../support/wait";

afterAll(stopAllNats);

/** Connects to any of `servers`, runs `fn`, always closes the connection. */
async function withClient<T>(servers: NatsServer[], fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: servers.map((s) => s.url), reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

/** The bodies of the first `count` messages of the stream, read with an ordered consumer. */
async function read(nc: NatsConnection, stream: string, count: number): Promise<string[]> {
  const consumer = await jetstream(nc).consumers.get(stream);
  const bodies: string[] = [];
  for await (const m of await consumer.fetch({ max_messages: count, expires: 2000 })) bodies.push(m.string());
  return bodies;
}

/**
 * Fetches from a durable pull consumer (acking each) into `into` (stream sequence -> body) until it
 * holds `count` messages: poll it, a fetch that fails half-way loses nothing.
 */
async function readDurable(
  nc: NatsConnection,
  stream: string,
  durable: string,
  into: Map<number, string>,
  count: number,
): Promise<string[] | false> {
  const consumer = await jetstream(nc, { timeout: 2000 }).consumers.get(stream, durable);
  if (into.size < count) {
    for await (const m of await consumer.fetch({ max_messages: count - into.size, expires: 1000 })) {
      into.set(m.seq, m.string());
      m.ack();
    }
  }
  return into.size >= count && [...into.entries()].sort(([a], [b]) => a - b).map(([, body]) => body);
}

/** Messages in this server's own replica of the stream (GET /jsz?streams=true), undefined if it has none. */
async function replicaMessages(server: NatsServer, stream: string): Promise<number | undefined> {
  const response = await fetch(`${server.monitorUrl}/jsz?streams=true`);
  const jsz = (await response.json()) as {
    account_details?: { stream_detail?: { name: string; state: { messages: number } }[] }[];
  };
  return jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === stream)?.state.messages;
}

/** The JetStream meta leader this server knows of (GET /jsz). */
async function metaLeaderOf(server: NatsServer): Promise<string | undefined> {
  const response = await fetch(`${server.monitorUrl}/jsz`);
  return ((await response.json()) as { meta_cluster?: { leader?: string } }).meta_cluster?.leader;
}

async function publishError(promise: Promise<unknown>): Promise<JetStreamApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(JetStreamApiError);
  return error as JetStreamApiError;
}

describe("natsServer", () => {
  it("runs a private JetStream server whose file store survives stop/start and kill/start", async () => {
    const server = await startNats();
    expect(server.port).not.toBe(4222);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.pid).toBeGreaterThan(0);

    await withClient([server], async (nc) => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "T", subjects: ["t.>"], storage: StorageType.File });
      const js = jetstream(nc);
      for (const i of [1, 2, 3]) expect((await js.publish(`t.${i}`, `m${i}`)).seq).toBe(i);
    });

    const firstPid = server.pid;
    await server.stop();
    expect(server.pid).toBeUndefined();
    await server.start();
    expect(server.pid).toBeGreaterThan(0);
    expect(server.pid).not.toBe(firstPid);
    await withClient([server], async (nc) => {
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info("T")).state.messages).toBe(3);
      expect(await read(nc, "T", 3)).toEqual(["m1", "m2", "m3"]);
    });

    await server.kill();
    expect(server.pid).toBeUndefined();
    await server.start();
    await withClient([server], async (nc) => {
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info("T")).state).toMatchObject({ messages: 3, last_seq: 3 });
      const js = jetstream(nc);

      // Optimistic concurrency: a Nats-Expected-Last-Sequence that is not the stream's last sequence
      // is refused (400, err_code 10071), as a raw header and through the client's `expect` option.
      const h = headers();
      h.set("Nats-Expected-Last-Sequence", "1");
      for (const refused of [
        await publishError(js.publish("t.x", "x", { headers: h })),
        await publishError(js.publish("t.x", "x", { expect: { lastSequence: 2 } })),
      ]) {
        expect(refused.code).toBe(JetStreamApiCodes.StreamWrongLastSequence);
        expect(refused.status).toBe(400);
        expect(refused.message).toBe("wrong last sequence: 3");
      }
      expect((await js.publish("t.4", "m4", { expect: { lastSequence: 3 } })).seq).toBe(4);
    });
    expect(server.output()).toContain("Restored 3 messages for stream '$G > T'");
  });

  it("runs a 3-node cluster whose R3 stream survives losing its leader", async () => {
    const nodes = await startNatsCluster(3);
    expect(new Set(nodes.map((n) => n.name)).size).toBe(3);
    expect(new Set(nodes.map((n) => n.storeDir)).size).toBe(3);
    const poll = { timeoutMs: 15_000, intervalMs: 100 };

    await withClient(nodes, async (nc) => {
      // Short API timeouts: a request that reaches no leader fails fast and is polled again.
      const jsm = await jetstreamManager(nc, { timeout: 2000 });
      const js = jetstream(nc, { timeout: 2000 });
      await jsm.streams.add({ name: "R", subjects: ["r.>"], storage: StorageType.File, num_replicas: 3 });
      for (const i of [1, 2, 3]) await js.publish(`r.${i}`, `m${i}`);
      // A durable consumer is replicated like its stream (R3). (An ephemeral or ordered consumer created
      // right after a node died may be placed on the dead node by 2.9 and its creation times out.)
      await jsm.consumers.add("R", { durable_name: "reader", ack_policy: AckPolicy.Explicit });

      const info = await jsm.streams.info("R");
      expect(info.cluster?.replicas).toHaveLength(2);
      const leader = nodes.find((n) => n.name === info.cluster?.leader);
      if (!leader) throw new Error(`no stream leader in ${JSON.stringify(info.cluster)}`);
      await leader.kill();
      const survivors = nodes.filter((n) => n !== leader);

      // The two others elect a new stream leader, and a new meta leader if the killed node was it
      // (each a few seconds: raft election timeouts).
      await eventually(
        async () => {
          const streamLeader = (await jsm.streams.info("R")).cluster?.leader;
          const metaLeader = await metaLeaderOf(survivors[0]!);
          return streamLeader && streamLeader !== leader.name && metaLeader && metaLeader !== leader.name;
        },
        { ...poll, what: "new leaders without the killed node" },
      );
      // msgID: a retry after a lost ack is a duplicate, not a second message.
      const ack = await eventually(() => js.publish("r.4", "m4", { msgID: "m4", timeout: 1000 }), {
        ...poll,
        what: "a publish to R without its old leader",
      });
      expect(ack.seq).toBe(4);
      const received = new Map<number, string>();
      const bodies = await eventually(() => readDurable(nc, "R", "reader", received, 4), {
        ...poll,
        what: "reading R without its old leader",
      });
      expect(bodies).toEqual(["m1", "m2", "m3", "m4"]);
      expect((await jsm.streams.getMessage("R", { seq: 4 }))?.string()).toBe("m4");

      // The killed node comes back on its ports and store dir, and catches up.
      await leader.start();
      expect(leader.pid).toBeGreaterThan(0);
      await eventually(async () => (await replicaMessages(leader, "R")) === 4, {
        ...poll,
        what: `${leader.name} catching up on R`,
      });
      await eventually(
        async () => {
          const replicas = (await jsm.streams.info("R")).cluster?.replicas ?? [];
          return replicas.some((r) => r.name === leader.name) && replicas.every((r) => r.current && !r.offline);
        },
        { ...poll, what: `${leader.name} current in stream R` },
      );
    });
  }, 45_000);
});
