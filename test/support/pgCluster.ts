// Real, throw-away Postgres 15 servers for tests: a primary that allows streaming replication and
// streaming replicas of it, each in a temporary folder of its own, on a free port, with its Unix
// socket in that folder. The machine's own cluster (127.0.0.1:5432, /var/run/postgresql) is never
// touched: every pg_ctl call here names a data directory this module made.
//
// As root the binaries run as the `postgres` OS user (runuser); as any other user they run as that user.
import { execFile, spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { appendFile, chown, mkdtemp, open, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./ports";
import { orphanedTempDirs } from "./tempDirs";
import { eventually } from "./wait";

const BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";
const DIR_PREFIX = "pg-cluster-";
const START_TIMEOUT_S = 60;
const execFileAsync = promisify(execFile);
const asRoot = process.getuid?.() === 0;

export interface PgServer {
  port: number;
  /** The data directory (mode 0700); its log is `<dataDir>/../log.txt`, outside it so base backups skip it. */
  dataDir: string;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** One-shot query via a pg.Client (connect, query, end). */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    database?: string,
  ): Promise<T[]>;
  /** pg_ctl stop -m fast (idempotent). */
  stop(): Promise<void>;
  /** pg_ctl stop -m immediate: a crash, the next start runs recovery (idempotent). */
  kill(): Promise<void>;
  /** pg_ctl start again on the same port and dir; waits until it accepts connections (no-op if running). */
  start(): Promise<void>;
}

export interface PgPrimary extends PgServer {
  /** A streaming replica made with pg_basebackup -R -X stream from this primary, started, streaming, read-only. */
  addReplica(): Promise<PgReplica>;
}

export interface PgReplica extends PgServer {
  /** pg_wal_replay_pause(), then waits until pg_get_wal_replay_pause_state() = 'paused' (WAL still arrives). */
  pauseReplay(): Promise<void>;
  /** pg_wal_replay_resume(). */
  resumeReplay(): Promise<void>;
}

/** Settings of every server (replicas get them with the base backup). Small: two cores. */
const SETTINGS = `
# test/support/pgCluster.ts
listen_addresses = '127.0.0.1'
shared_buffers = 32MB
max_connections = 50
fsync = off
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
wal_keep_size = 128MB
hot_standby = on
wal_retrieve_retry_interval = 500ms
log_line_prefix = '%m [%p] %q%u@%d '
`;

// ---------------------------------------------------------------------------------------------------------------
// Running the binaries

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Postgres refuses to run as root: as root, run the tool as the `postgres` user. */
function command(tool: string, args: string[]): [string, string[]] {
  const path = join(BIN, tool);
  return asRoot ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, args];
}

/** The environment without PG* variables (PGDATA, PGPORT, PGHOST... would aim the tools elsewhere). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("PG")));
}

/** Runs a tool; never throws for a non-zero exit (see `run`). cwd must be readable by postgres. */
async function exec(tool: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Outcome> {
  const [file, argv] = command(tool, args);
  try {
    const { stdout, stderr } = await execFileAsync(file, argv, { cwd, env: cleanEnv(), timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== "number") throw error; // could not run it at all (ENOENT...) or killed by the timeout
    return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Runs a tool and throws, with its output and the server log's tail, unless it exits 0. */
async function run(tool: string, args: string[], cwd: string, logFile?: string): Promise<string> {
  let outcome: Outcome;
  try {
    outcome = await exec(tool, args, cwd);
  } catch (error) {
    throw new Error(`${tool} ${args.join(" ")}: ${String(error)}${await logTail(logFile)}`, { cause: error });
  }
  if (outcome.code !== 0)
    throw new Error(
      `${tool} ${args.join(" ")} exited ${outcome.code}\n${outcome.stderr}${outcome.stdout}${await logTail(logFile)}`,
    );
  return outcome.stdout;
}

async function logTail(logFile: string | undefined, lines = 30): Promise<string> {
  if (!logFile) return "";
  const text = await readFile(logFile, "utf8").catch(() => "");
  return text ? `\n--- last lines of ${logFile} ---\n${text.trimEnd().split("\n").slice(-lines).join("\n")}` : "";
}

let postgresIds: Promise<{ uid: number; gid: number }> | undefined;

/** A temporary folder postgres owns, named after this process so a later run can sweep it if we die. */
async function makeBaseDir(): Promise<string> {
  sweepStale();
  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`)); // mode 0700
  if (asRoot) {
    postgresIds ??= Promise.all([
      execFileAsync("id", ["-u", "postgres"]),
      execFileAsync("id", ["-g", "postgres"]),
    ]).then(([u, g]) => ({ uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) }));
    const { uid, gid } = await postgresIds;
    await chown(dir, uid, gid);
  }
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// Servers

/** Every server this process made and has not removed yet. */
const servers = new Set<Server>();

class Server implements PgServer {
  readonly dataDir: string;
  readonly logFile: string;
  port = 0;

  constructor(
    readonly baseDir: string,
    readonly role: "primary" | "replica",
  ) {
    this.dataDir = join(baseDir, "data");
    this.logFile = join(baseDir, "log.txt");
    servers.add(this);
    registerExitHandler();
  }

  url(database = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  async sql<T extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    database?: string,
  ): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url(database), connectionTimeoutMillis: 10_000 });
    client.on("error", () => undefined); // a server killed under an idle client must not crash the worker
    await client.connect();
    try {
      return (await client.query<T>(text, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async isRunning(): Promise<boolean> {
    const { code, stderr } = await exec("pg_ctl", ["status", "-D", this.dataDir], this.baseDir);
    if (code === 0) return true;
    if (code === 3) return false; // "no server running"
    throw new Error(`pg_ctl status -D ${this.dataDir} exited ${code}: ${stderr}`);
  }

  async start(): Promise<void> {
    if (await this.isRunning()) return;
    // Port, socket folder and a name for `ps` on the command line: a replica's copied postgresql.conf can't clash.
    const options = `-p ${this.port} -k '${this.baseDir}' -c cluster_name=${basename(this.baseDir)}`;
    const args = ["start", "-D", this.dataDir, "-l", this.logFile, "-w", "-t", `${START_TIMEOUT_S}`, "-o", options];
    await run("pg_ctl", args, this.baseDir, this.logFile);
    // pg_ctl -w saw the postmaster ready (a standby: consistent); make sure TCP answers too.
    await eventually(() => this.sql("SELECT 1").then(() => true), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `${this.role} on port ${this.port} to accept connections`,
    });
  }

  stop(): Promise<void> {
    return this.shutdown("fast");
  }

  kill(): Promise<void> {
    return this.shutdown("immediate");
  }

  private async shutdown(mode: "fast" | "immediate"): Promise<void> {
    if (!existsSync(this.dataDir) || !(await this.isRunning())) return;
    const args = ["stop", "-D", this.dataDir, "-m", mode, "-w", "-t", `${START_TIMEOUT_S}`];
    await run("pg_ctl", args, this.baseDir, this.logFile);
  }

  /** First start: on a free port, again on another one if someone took it meanwhile. */
  async startOnFreePort(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      const logSize = await stat(this.logFile).then(
        (s) => s.size,
        () => 0,
      );
      try {
        await this.start();
        return;
      } catch (error) {
        const newLog = await readFromOffset(this.logFile, logSize);
        if (attempt >= 3 || !/could not bind|address already in use/i.test(newLog)) throw error;
      }
    }
  }
}

class Primary extends Server implements PgPrimary {
  async addReplica(): Promise<PgReplica> {
    const replica = new Replica(await makeBaseDir(), "replica");
    const name = `replica_${replica.baseDir.split("-").pop()!.toLowerCase()}`;
    const conninfo = `host=127.0.0.1 port=${this.port} user=postgres application_name=${name}`;
    // -R: standby.signal + primary_conninfo; -X stream: the WAL written during the copy comes along.
    const args = ["-D", replica.dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync", "-d", conninfo];
    await run("pg_basebackup", args, replica.baseDir, this.logFile);
    await replica.startOnFreePort();
    await eventually(
      async () => {
        const [row] = await replica.sql<{ status: string }>("SELECT status FROM pg_stat_wal_receiver");
        return row?.status === "streaming";
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `replica on port ${replica.port} to stream from ${this.port}` },
    );
    return replica;
  }
}

class Replica extends Server implements PgReplica {
  async pauseReplay(): Promise<void> {
    await this.sql("SELECT pg_wal_replay_pause()");
    await eventually(
      async () => {
        const [row] = await this.sql<{ state: string }>("SELECT pg_get_wal_replay_pause_state() AS state");
        return row?.state === "paused";
      },
      { timeoutMs: 10_000, intervalMs: 20, what: `replay on port ${this.port} to pause` },
    );
  }

  async resumeReplay(): Promise<void> {
    await this.sql("SELECT pg_wal_replay_resume()");
  }
}

async function readFromOffset(file: string, offset: number): Promise<string> {
  const handle = await open(file, "r").catch(() => undefined);
  if (!handle) return "";
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    await handle.read(buffer, 0, buffer.length, offset);
    return buffer.toString("utf8");
  } finally {
    await handle.close();
  }
}

/** initdb (trust auth, user postgres) in a temp folder, replication allowed from 127.0.0.1, started on a free port. */
export async function startPrimary(): Promise<PgPrimary> {
  const primary = new Primary(await makeBaseDir(), "primary");
  const initdb = ["-D", primary.dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"];
  await run("initdb", [...initdb, "--no-sync", "--no-instructions"], primary.baseDir);
  // initdb's trust pg_hba.conf already has this line; say it here so nothing depends on the sample file.
  await appendFile(join(primary.dataDir, "pg_hba.conf"), "\nhost replication all 127.0.0.1/32 trust\n");
  await appendFile(join(primary.dataDir, "postgresql.conf"), SETTINGS);
  await primary.startOnFreePort();
  return primary;
}

/** Stops every server this module started (replicas first) and removes their folders. Call in afterAll. */
export async function stopAll(): Promise<void> {
  const errors: unknown[] = [];
  for (const role of ["replica", "primary"] as const) {
    const group = [...servers].filter((s) => s.role === role);
    await Promise.all(
      group.map(async (server) => {
        try {
          await server.stop();
        } catch (error) {
          errors.push(error);
          await server.kill().catch((e: unknown) => errors.push(e));
        }
      }),
    );
  }
  for (const server of [...servers]) {
    // One that would not stop keeps its folder; the exit handler tries again.
    if (existsSync(server.dataDir) && (await server.isRunning().catch(() => true))) continue;
    await rm(server.baseDir, { recursive: true, force: true });
    servers.delete(server);
  }
  if (errors.length) throw new AggregateError(errors, `stopAll: ${errors.map(String).join("\n")}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Safety nets

/** pg_ctl stop -m immediate + rm, synchronously (for 'exit' handlers and sweeps). */
function killSync(baseDir: string): void {
  const dataDir = join(baseDir, "data");
  if (existsSync(join(dataDir, "postmaster.pid"))) {
    const [file, argv] = command("pg_ctl", ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "10"]);
    spawnSync(file, argv, { cwd: baseDir, env: cleanEnv(), stdio: "ignore", timeout: 15_000 });
  }
  rmSync(baseDir, { recursive: true, force: true });
}

let exitHandlerRegistered = false;

/** If the process ends without stopAll (a crashed hook, an abort), the servers still go, replicas first. */
function registerExitHandler(): void {
  if (exitHandlerRegistered) return;
  exitHandlerRegistered = true;
  process.once("exit", () => {
    const order = [...servers].sort((a, b) => Number(a.role === "primary") - Number(b.role === "primary"));
    for (const server of order) killSync(server.baseDir);
  });
}

let swept = false;

/** Folders of earlier processes that died without cleaning up (SIGKILL): stop their servers, remove them. */
function sweepStale(): void {
  if (swept) return;
  swept = true;
  for (const dir of orphanedTempDirs(DIR_PREFIX)) killSync(dir);
}
