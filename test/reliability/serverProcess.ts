import { execFile, spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { openPostgres } from "../../src/db/postgres";
import { verify, type VerifyResult } from "../../src/verify/verify";
import { TEST_JWT_SECRET, type GqlResponse } from "../support/client";
import { TEST_READ_YOUR_WRITES_TIMEOUT_MS } from "../support/db";
import { SERVER_ENTRY } from "../../scripts/build-server";

const ROOT = resolve(import.meta.dirname, "../..");

/**
 * The real API as a separate OS process, as `npm start` runs it: `node dist/server/main.mjs`,
 * built from the code as it is by the tests' global setup. The pid we SIGKILL is the server itself.
 */
export class ServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private log = "";
  readonly url: string;
  /** Milliseconds from spawn to /readyz 200, per start. */
  readonly startTimes: number[] = [];

  constructor(
    private readonly databaseUrl: string,
    readonly port: number,
    private readonly env: Record<string, string> = {},
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The last lines the process wrote (for failure messages). */
  output(): string {
    return this.log.slice(-4000);
  }

  async start(): Promise<void> {
    if (this.child) throw new Error("server already running");
    const child = spawn(process.execPath, [SERVER_ENTRY], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: this.databaseUrl,
        PORT: String(this.port),
        JWT_SECRET: TEST_JWT_SECRET,
        LOG_LEVEL: "warn",
        PROJECTOR_POLL_MS: "100",
        READ_YOUR_WRITES_TIMEOUT_MS: String(TEST_READ_YOUR_WRITES_TIMEOUT_MS),
        // Load and retry loops of one actor; the limits have tests of their own.
        MUTATIONS_PER_SECOND: "0",
        MUTATION_CONCURRENCY: "0",
        TRUSTED_DOCUMENTS: "only", // as in production: the tests name their documents by id
        ...this.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    this.child = child;
    this.exited = new Promise((r) => child.once("exit", (code) => r(code)));
    let exitCode: number | null | undefined;
    void this.exited.then((code) => (exitCode = code ?? -1));
    // Polls /readyz with a deadline, and stops at once if the process dies.
    const started = Date.now();
    const deadline = started + 60_000;
    for (;;) {
      if (exitCode !== undefined) {
        this.child = undefined;
        throw new Error(`server exited with ${exitCode} during start-up:\n${this.output()}`);
      }
      const ready = await fetch(`${this.url}/readyz`).then(
        async (r) => (await r.arrayBuffer(), r.status === 200),
        () => false,
      );
      if (ready) {
        this.startTimes.push(Date.now() - started);
        return;
      }
      if (Date.now() > deadline) throw new Error(`server not ready after 60 s:\n${this.output()}`);
      await delay(50);
    }
  }

  /** SIGKILL: no shutdown hooks, no draining; in-flight requests lose their answers. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGKILL");
    await this.exited;
    this.child = undefined;
  }

  /** Graceful stop (SIGTERM), SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGTERM");
    const done = await Promise.race([this.exited!.then(() => true), delay(15_000).then(() => false)]);
    if (!done) child.kill("SIGKILL");
    await this.exited;
    this.child = undefined;
  }
}

/** How a node process run to its end (the built server, a script) exited, and what it wrote. */
export interface Exited {
  code: number;
  stdout: string;
  stderr: string;
}

/** `node <args>` from the checkout's root, with `env` over the test defaults, run to its end. */
export function runToExit(args: string[], env: Record<string, string>): Promise<Exited> {
  return promisify(execFile)(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "warn", ...env },
    // Under a test's own 30 s: a child that hangs is ended (and its test fails) before its test times out.
    timeout: 25_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: Exited) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/**
 * The built server started with `env` (over the test defaults) where it cannot start: how it
 * exits, and what it wrote to stderr.
 */
export async function startFailure(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const { code, stderr } = await runToExit([SERVER_ENTRY], env);
  return { code, stderr: stderr.trim() };
}

/**
 * Sends a request until it gets an answer. A request whose outcome is unknown (connection
 * refused/reset, or `unknown(res)` says so) is sent again unchanged: for placeOrder that means
 * the SAME idempotency key, so a first attempt that did commit is answered, not repeated.
 */
export async function untilAnswered<T>(
  send: () => Promise<GqlResponse<T>>,
  stats: { retries: number },
  options: { unknown?: (res: GqlResponse<T>) => boolean; onUnknown?: () => void; maxAttempts?: number } = {},
): Promise<GqlResponse<T>> {
  const maxAttempts = options.maxAttempts ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await send();
      if (!options.unknown?.(res)) return res;
    } catch (error) {
      if (attempt >= maxAttempts) throw error;
    }
    if (attempt >= maxAttempts) throw new Error(`no answer after ${maxAttempts} attempts`);
    stats.retries += 1;
    options.onUnknown?.();
    // Backoff while the server restarts or reconnects; not a wait for consistency.
    await delay(Math.min(20 * attempt, 200) + Math.random() * 20);
  }
}

/** Runs src/verify against a database, or a write and a read database (it waits for the projections to catch up itself). */
export async function verifyDatabase(url: string, readUrl?: string, waitMs = 15_000): Promise<VerifyResult> {
  const db = openPostgres(url, 2);
  const read = readUrl ? openPostgres(readUrl, 2) : undefined;
  try {
    return await verify(db, { waitMs }, read);
  } finally {
    await Promise.all([db.close(), read?.close()]);
  }
}
