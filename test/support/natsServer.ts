// Real, throw-away NATS servers with JetStream for tests: single servers and routed clusters, each
// server on free ports (client + http monitor, + cluster), with its store in a temporary folder of
// its own. The machine's own nats-server is never touched:
// the only processes signalled are the ones this module spawned, by their pid.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports";
import { orphanedTempDirs } from "./tempDirs";
import { eventually } from "./wait";

const BIN = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
const DIR_PREFIX = "nats-test-";
const OUTPUT_LIMIT = 20_000;
const START_TIMEOUT_MS = 30_000; // a whole cluster restarting needs two raft elections (seen: 5-18 s)
const STOP_GRACE_MS = 10_000;
const START_ATTEMPTS = 3; // a free port can be taken between freePort() and the server's bind

export interface NatsServer {
  /** Server name (-n); unique in its cluster; what stream info `cluster.leader` reports. */
  name: string;
  port: number;
  /** nats://127.0.0.1:<port> */
  url: string;
  /** http://127.0.0.1:<monitor port> (/healthz, /jsz, /varz...). */
  monitorUrl: string;
  /** The -sd folder; JetStream keeps its data in `<storeDir>/jetstream`. */
  storeDir: string;
  /** Pid of the running process; undefined while stopped. */
  pid: number | undefined;
  /** SIGTERM, waits for the exit (SIGKILL after 10 s). No-op if stopped. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), waits for the exit. No-op if stopped. */
  kill(): Promise<void>;
  /**
   * Starts again on the same ports, store dir and cluster config; waits until ready (/healthz ok; in a
   * cluster also a meta leader known: its stream replicas may still be catching up). No-op if running.
   * A node alone has no quorum: restart a whole stopped cluster with `Promise.all(nodes.map((n) => n.start()))`.
   */
  start(): Promise<void>;
  /** The last ~20 KB it logged, for failure messages. */
  output(): string;
}

interface ClusterConfig {
  name: string;
  port: number;
  /** Cluster ports of the other nodes. */
  routes: number[];
}

/** Every server this process made whose store dir is not removed yet. */
const servers = new Set<Server>();
let sequence = 0;

class Server implements NatsServer {
  readonly url: string;
  readonly monitorUrl: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #log = "";

  constructor(
    readonly name: string,
    readonly port: number,
    readonly monitorPort: number,
    readonly storeDir: string,
    readonly cluster?: ClusterConfig,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
    this.monitorUrl = `http://127.0.0.1:${monitorPort}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  output(): string {
    return this.#log;
  }

  /** Spawns the process (no-op if running); does not wait for readiness. */
  spawn(): void {
    if (this.#child) return;
    const args = ["-a", "127.0.0.1", "-p", `${this.port}`, "-m", `${this.monitorPort}`, "-n", this.name];
    args.push("-js", "-sd", this.storeDir, "-P", join(this.storeDir, "nats-server.pid"));
    if (this.cluster) {
      const { name, port, routes } = this.cluster;
      args.push("--cluster_name", name, "--cluster", `nats://127.0.0.1:${port}`);
      args.push("--routes", routes.map((p) => `nats://127.0.0.1:${p}`).join(","));
    }
    this.#append(`--- ${BIN} ${args.join(" ")}\n`);
    const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    child.stdout?.on("data", (chunk: Buffer) => this.#append(chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => this.#append(chunk.toString()));
    this.#exited = new Promise((resolve) => {
      const done = (how: string) => {
        if (this.#child !== child) return;
        this.#child = undefined;
        this.#append(`--- ${how}\n`);
        resolve();
      };
      child.once("exit", (code, signal) => done(`exited (code ${code}, signal ${signal})`));
      child.once("error", (error) => done(`could not run: ${error.message}`));
    });
  }

  async start(): Promise<void> {
    if (this.#child) return;
    this.spawn();
    await this.waitReady();
  }

  /** Resolves when /healthz is ok (in a cluster: JetStream enabled and a meta leader known); throws if it exits. */
  async waitReady(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const exited = this.#exited.then(() => {
      throw new Error(`nats-server ${this.name} exited while starting`);
    });
    let stopped = false;
    const ready = eventually(
      async () => {
        if (stopped) return true;
        const problem = await this.healthProblem();
        if (problem) throw new Error(problem); // eventually() reports the last one if it times out
        if (this.cluster && !(await this.jsz()).meta_cluster?.leader) throw new Error("no JetStream meta leader");
        return true;
      },
      // Not faster: nats-server logs a warning for every failed health check.
      { timeoutMs, intervalMs: 100, what: `nats-server ${this.name} ready` },
    );
    try {
      await Promise.race([ready, exited]);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${message}\n${this.tail()}`, { cause: error });
    } finally {
      stopped = true;
      exited.catch(() => undefined);
      ready.catch(() => undefined);
    }
  }

  /**
   * Undefined if GET /healthz is ok (ready for clients with JetStream; a single server also has its
   * streams loaded), else why not. Throws if the monitor port does not answer.
   */
  async healthProblem(): Promise<string | undefined> {
    // In a cluster, not whether every stream and consumer replica is current (under load a
    // restarted node's can take long to catch up): JetStream up, and the meta leader (waitReady).
    const query = this.cluster ? "?js-enabled-only=true" : "";
    const response = await fetch(`${this.monitorUrl}/healthz${query}`, { signal: AbortSignal.timeout(2000) });
    const body = await response.text();
    if (response.ok) return undefined;
    try {
      return (JSON.parse(body) as { error?: string }).error ?? `HTTP ${response.status} ${body}`;
    } catch {
      return `HTTP ${response.status} ${body}`;
    }
  }

  /** GET /jsz (JetStream state of this server). */
  async jsz(): Promise<Jsz> {
    const response = await fetch(`${this.monitorUrl}/jsz`, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) throw new Error(`GET /jsz: HTTP ${response.status}`);
    return (await response.json()) as Jsz;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      if (this.#child === child) child.kill("SIGKILL");
    }, STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill("SIGKILL");
    await this.#exited;
  }

  /** Synchronous SIGKILL for the process 'exit' handler (cannot wait). */
  killNow(): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }

  #append(text: string): void {
    this.#log += text;
    if (this.#log.length > OUTPUT_LIMIT) this.#log = this.#log.slice(-OUTPUT_LIMIT);
  }

  /** The last `lines` lines of output(), headed by the server name. */
  tail(lines = 40): string {
    return `--- last lines of ${this.name} ---\n${this.#log.trimEnd().split("\n").slice(-lines).join("\n")}`;
  }
}

/** The part of GET /jsz used here. */
interface Jsz {
  meta_cluster?: { name?: string; leader?: string; cluster_size?: number };
}

// ---------------------------------------------------------------------------------------------------------------
// Store dirs and clean-up

let registered = false;

function register(server: Server): void {
  servers.add(server);
  if (registered) return;
  registered = true;
  // Safety net: a test run that ends without stopAllNats() leaves no servers or folders behind.
  process.once("exit", () => {
    for (const s of servers) s.killNow();
    for (const s of servers) {
      try {
        rmSync(s.storeDir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // a killed server may still be writing; the next run's sweep removes it
      }
    }
  });
}

/** A temporary folder named after this process, so a later run can sweep it if this one is killed. */
async function makeStoreDir(): Promise<string> {
  sweepStale();
  return mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
}

let swept = false;

/**
 * Folders of earlier runs whose process is gone (killed before any clean-up): SIGKILLs the server
 * still running in one (its pid file, checked against its command line naming that folder) and removes it.
 */
function sweepStale(): void {
  if (swept) return;
  swept = true;
  for (const dir of orphanedTempDirs(DIR_PREFIX)) {
    try {
      const pid = Number(readFileSync(join(dir, "nats-server.pid"), "utf8").trim());
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (pid > 0 && cmdline.includes(dir)) process.kill(pid, "SIGKILL");
    } catch {
      // no pid file or no such process
    }
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // try again next run
    }
  }
}

/** Stops and forgets servers (used when a start attempt failed). */
async function discard(list: Server[]): Promise<void> {
  await Promise.all(list.map((s) => s.kill()));
  await Promise.all(list.map((s) => rm(s.storeDir, { recursive: true, force: true })));
  for (const s of list) servers.delete(s);
}

function portTaken(list: Server[]): boolean {
  return list.some((s) => /address already in use/i.test(s.output()));
}

// ---------------------------------------------------------------------------------------------------------------
// API

/** One server with JetStream in its own temp store dir; resolves when /healthz is ok. */
export async function startNats(): Promise<NatsServer> {
  for (let attempt = 1; ; attempt++) {
    const [port, monitorPort] = await distinctFreePorts(2);
    const server = new Server(`n${++sequence}`, port!, monitorPort!, await makeStoreDir());
    register(server);
    try {
      await server.start();
      return server;
    } catch (error) {
      const retry = attempt < START_ATTEMPTS && portTaken([server]);
      await discard([server]);
      if (!retry) throw error;
    }
  }
}

/** A cluster of `size` (default 3) JetStream servers routed to each other; resolves when JetStream has a meta leader. */
export async function startNatsCluster(size = 3): Promise<NatsServer[]> {
  for (let attempt = 1; ; attempt++) {
    const cluster = `c${++sequence}`;
    const ports = await distinctFreePorts(size * 3);
    const clusterPorts = ports.slice(2 * size);
    const nodes: Server[] = [];
    for (let i = 0; i < size; i++) {
      const routes = clusterPorts.filter((_, j) => j !== i);
      const config = { name: cluster, port: clusterPorts[i]!, routes };
      nodes.push(new Server(`${cluster}-n${i + 1}`, ports[i]!, ports[size + i]!, await makeStoreDir(), config));
    }
    nodes.forEach(register);
    try {
      nodes.forEach((n) => n.spawn());
      await Promise.all(nodes.map((n) => n.waitReady()));
      // Every node current and agreeing on one meta leader: assets with num_replicas = size can be placed.
      await eventually(
        async () => {
          const leaders = new Set(await Promise.all(nodes.map(async (n) => (await n.jsz()).meta_cluster?.leader)));
          if (leaders.size !== 1 || leaders.has(undefined)) return false;
          return (await Promise.all(nodes.map((n) => n.healthProblem()))).every((problem) => !problem);
        },
        { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, what: `one JetStream meta leader in ${cluster}` },
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${nodes.map((n) => n.tail()).join("\n")}`, { cause: error });
      });
      return nodes;
    } catch (error) {
      const retry = attempt < START_ATTEMPTS && portTaken(nodes);
      await discard(nodes);
      if (!retry) throw error;
    }
  }
}

/** Stops every server this module started and removes their store dirs. For afterAll. */
export async function stopAllNats(): Promise<void> {
  const list = [...servers];
  await Promise.all(list.map((s) => s.stop()));
  await Promise.all(list.map((s) => rm(s.storeDir, { recursive: true, force: true })));
  for (const s of list) servers.delete(s);
}

/** `count` free ports, all different (freePort() alone may hand out the same port twice in a row). */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
