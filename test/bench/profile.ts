// Summarizes a V8 CPU profile (node --cpu-prof, e.g. from `npm run bench -- --profile`):
// the functions with the most self time, and the packages/files where the time goes.
//   npx tsx test/bench/profile.ts <file.cpuprofile> [top] [--from=s] [--to=s] [--timeline]
// --from/--to keep the samples of a window (seconds since the profile started); --timeline
// prints how busy the thread was in each second, to find a benchmark phase's window.
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const [file, topArg] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const flag = (name: string) => flags.find((f) => f.startsWith(`--${name}=`))?.split("=")[1];
const from = Number(flag("from") ?? 0) * 1e6;
const to = Number(flag("to") ?? Infinity) * 1e6;
if (!file) {
  console.error("usage: npx tsx test/bench/profile.ts <file.cpuprofile> [top]");
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
const perSecond: { busy: number; all: number }[] = [];
let at = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  at += dt;
  const second = Math.floor(at / 1e6);
  perSecond[second] ??= { busy: 0, all: 0 };
  perSecond[second]!.all += dt;
  if (!idleIds.has(id)) perSecond[second]!.busy += dt;
  if (at >= from && at <= to) self.set(id, (self.get(id) ?? 0) + dt);
});
if (flags.includes("--timeline")) {
  console.log("busy % per second since the profile started:");
  console.log(perSecond.map((s, i) => `${i}:${s ? Math.round((s.busy / Math.max(s.all, 1)) * 100) : 0}`).join(" "));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

const where = (url: string) => {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.includes("/src/")) return `src/${url.split("/src/")[1]!}`;
  if (url.startsWith("node:")) return url;
  return url ? url.replace(/^file:\/\//, "") : "(native/VM)";
};

const fns = new Map<string, number>();
const places = new Map<string, number>();
for (const [id, us] of self) {
  const { callFrame } = byId.get(id)!;
  const name = callFrame.functionName || "(anonymous)";
  const place = where(callFrame.url);
  const key = `${name}  ${place}${callFrame.url ? `:${callFrame.lineNumber + 1}` : ""}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
  const bucket = ["(idle)", "(program)", "(garbage collector)"].includes(name) ? name : place;
  places.set(bucket, (places.get(bucket) ?? 0) + us);
}
const callersOf = flag("callers");
if (callersOf) {
  // The stacks (5 frames up) under which a function spent its self time.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map<string, number>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName !== callersOf) continue;
    const frames: string[] = [];
    for (let p = parent.get(id); p !== undefined && frames.length < Number(flag("depth") ?? 6); p = parent.get(p)) {
      const f = byId.get(p)!.callFrame;
      frames.push(`${f.functionName || "(anonymous)"}@${where(f.url)}:${f.lineNumber + 1}`);
    }
    const key = frames.join(" < ");
    stacks.set(key, (stacks.get(key) ?? 0) + us);
  }
  console.log(`\ncallers of ${callersOf}:`);
  for (const [k, v] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 10))
    console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
}

const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
const busy = total - (places.get("(idle)") ?? 0);
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy`);
console.log("\nself time by package / file:");
for (const [k, v] of [...places].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
console.log("\nself time by function:");
for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
