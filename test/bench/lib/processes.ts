import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { round } from "./stats";
import { SERVER_FILE } from "../../../scripts/build-server";

export const ROOT = new URL("../../../", import.meta.url).pathname;

function statusField(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The process's resident memory now (MB). */
export const rssMb = (pid: number): number | undefined => statusField(pid, "VmRSS");

/** CPU seconds (user + system, all threads) the process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime: fields 14 and 15 of stat
  } catch {
    return undefined;
  }
}

export interface PhaseMemory {
  process: string;
  phase: string;
  /** CPU seconds the process used during the phase (all threads). */
  cpuSeconds: number | undefined;
  wallSeconds: number;
  /** Highest VmRSS seen by sampling every 100 ms. */
  peakRssMb: number;
  /** The kernel's high-water mark of the phase (VmHWM, reset at the phase start through clear_refs). */
  hwmMb: number | undefined;
  endRssMb: number | undefined;
}

/**
 * Peak resident memory of one process per phase: VmRSS sampled every 100 ms, and the kernel's
 * exact high-water mark VmHWM, reset at each phase start by writing 5 to /proc/<pid>/clear_refs.
 */
export class MemoryTracker {
  readonly phases: PhaseMemory[] = [];
  private current:
    { phase: string; peak: number; hwmReset: boolean; cpu: number | undefined; started: number } | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    readonly processName: string,
  ) {
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
  }

  private lastCpu: number | undefined;

  private sample(): void {
    if (!this.current) return;
    this.lastCpu = cpuSeconds(this.pid) ?? this.lastCpu;
    const rss = statusField(this.pid, "VmRSS");
    if (rss !== undefined && rss > this.current.peak) this.current.peak = rss;
  }

  begin(phase: string): void {
    this.end();
    let hwmReset = true;
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, "5");
    } catch {
      hwmReset = false;
    }
    this.current = { phase, peak: 0, hwmReset, cpu: cpuSeconds(this.pid), started: performance.now() };
    this.sample();
  }

  /** Ends the current phase and returns its record. */
  end(): PhaseMemory | undefined {
    if (!this.current) return undefined;
    this.sample();
    const hwm = this.current.hwmReset ? statusField(this.pid, "VmHWM") : undefined;
    const cpu = cpuSeconds(this.pid) ?? this.lastCpu; // an exited process: its last sample
    this.phases.push({
      process: this.processName,
      phase: this.current.phase,
      cpuSeconds: cpu === undefined || this.current.cpu === undefined ? undefined : round(cpu - this.current.cpu, 2),
      wallSeconds: round((performance.now() - this.current.started) / 1000, 2),
      peakRssMb: round(Math.max(this.current.peak, hwm ?? 0), 1),
      hwmMb: hwm === undefined ? undefined : round(hwm, 1),
      endRssMb: (() => {
        const v = statusField(this.pid, "VmRSS");
        return v === undefined ? undefined : round(v, 1);
      })(),
    });
    this.current = undefined;
    return this.phases.at(-1);
  }

  stop(): void {
    this.end();
    clearInterval(this.timer);
  }
}

/** The server the bench times: the one `npm start` runs (built by the bench first). */
export const SERVER = SERVER_FILE;

/**
 * Another checkout's server (`--baseline`), run the same way: built there when that checkout
 * has the build (its dependencies linked or installed), else its TypeScript through tsx.
 */
export function serverOf(checkout: string): string {
  if (!existsSync(`${checkout}/scripts/build-server.ts`)) return `${checkout}/src/main.ts`;
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build-server.ts"], {
    cwd: checkout,
    stdio: "inherit",
  });
  if (built.status !== 0) throw new Error(`building the server of ${checkout} failed`);
  return `${checkout}/${SERVER}`;
}

export interface NodeProcessOptions {
  name: string;
  /** Script path relative to the repository root: JavaScript (.mjs) as it is, TypeScript as `node --import tsx <script>`. */
  script: string;
  args?: string[];
  env: Record<string, string>;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Another node executable (e.g. the Node 22 of lib/node22.ts); the bench's own by default. */
  node?: string;
}

/**
 * An entry point run by node itself (a TypeScript one as `node --import tsx <script>`): one
 * process (npx and the tsx CLI would put a wrapper process in between), so child.pid is the
 * process whose memory we read.
 */
export class NodeProcess {
  readonly memory: MemoryTracker;
  private output = "";
  private exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.memory = new MemoryTracker(child.pid!, name);
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  static spawn(options: NodeProcessOptions): NodeProcess {
    const child = spawn(
      options.node ?? process.execPath,
      [
        ...(options.nodeFlags ?? []),
        ...(options.script.endsWith(".ts") ? ["--import", "tsx"] : []),
        options.script,
        ...(options.args ?? []),
      ],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    return new NodeProcess(options.name, child);
  }

  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Polls GET <url> until 200, or fails with the process output. */
  async waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited during start-up:\n${this.output}`);
      try {
        const res = await fetch(url);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`${this.name} was not healthy after ${timeoutMs} ms:\n${this.output}`);
  }

  /** Resolves with the exit code. */
  wait(): Promise<number | null> {
    return this.exited;
  }

  /** SIGTERM (graceful: lets --cpu-prof write its profile), SIGKILL after a grace period. */
  async stop(graceMs = 15_000): Promise<void> {
    this.memory.stop();
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
