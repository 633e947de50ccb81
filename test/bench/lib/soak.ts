import { connectSubscribers, lagPhase, type Bench, type Server } from "./phases";
import { rssMb } from "./processes";
import { round } from "./stats";

export interface SoakMinute {
  minute: number;
  rssMb: number | null;
  lagP50Ms: number;
  lagP99Ms: number;
  orders: number;
  /** Pushes the subscribers received in this minute. */
  pushes: number;
}

export interface SoakResult {
  minutes: number;
  ratePerSecond: number;
  subscribers: number;
  /** RSS at the end over RSS after the warm-up (the first sixth, at least a minute), in %. */
  rssGrowthPct: number | null;
  /** The worst minute's lag p99. */
  lagP99Ms: number;
  warmupMinutes: number;
  curve: SoakMinute[];
}

/**
 * One server for `minutes` at `ratePerSecond` placeOrder (open loop), with 1,000 subscribers each
 * watching a product page of its own: every minute, the server's RSS and the commit → read row
 * lag of that minute's orders.
 */
export async function soak(
  bench: Bench,
  server: Server,
  { minutes, ratePerSecond, subscribers = 1_000 }: { minutes: number; ratePerSecond: number; subscribers?: number },
): Promise<SoakResult> {
  const pid = server.proc.child.pid!;
  const clients = await connectSubscribers(bench, server, {
    subscribers,
    pattern: "own",
    client: "lean",
    productIds: bench.products.slice(0, subscribers).map((p) => p.id),
  });
  const curve: SoakMinute[] = [];
  // A minute of orders per lag measurement, without a warm-up of its own (the soak is one run).
  const minute = { ...bench, settings: { ...bench.settings, warmupMs: 0, lagMs: 60_000 } };
  try {
    for (let m = 1; m <= minutes; m++) {
      const pushedBefore = clients.deliveries.length;
      const lag = await lagPhase(minute, server, ratePerSecond);
      const rss = rssMb(pid);
      curve.push({
        minute: m,
        rssMb: rss === undefined ? null : round(rss, 1),
        lagP50Ms: lag.p50,
        lagP99Ms: lag.p99,
        orders: lag.sent,
        pushes: clients.deliveries.length - pushedBefore,
      });
      clients.deliveries.length = 0; // the soak keeps counts, not every push
      bench.log(
        `  soak minute ${m}/${minutes}: RSS ${rss?.toFixed(0)} MB, lag p50 ${lag.p50} ms p99 ${lag.p99} ms, ${lag.sent} orders, ${curve.at(-1)!.pushes} pushes`,
      );
    }
  } finally {
    await clients.close();
  }
  const warmupMinutes = Math.max(1, Math.round(minutes / 6));
  const afterWarmup = curve[warmupMinutes - 1]?.rssMb ?? null;
  const last = curve.at(-1)?.rssMb ?? null;
  return {
    minutes,
    ratePerSecond: round(ratePerSecond, 1),
    subscribers: clients.connected,
    rssGrowthPct:
      afterWarmup !== null && last !== null && minutes > warmupMinutes
        ? round((last / afterWarmup - 1) * 100, 1)
        : null,
    lagP99Ms: Math.max(...curve.map((c) => c.lagP99Ms)),
    warmupMinutes,
    curve,
  };
}
