import { print } from "graphql";
import { ProductDocument, ProductsDocument } from "../../../src/storefront/generated/graphql";
import { HttpGraphQL } from "./http";
import { connectSubscribers, lagPhase, type Bench, type Server } from "./phases";
import { rssMb } from "./processes";
import { round } from "./stats";

export interface SoakMinute {
  minute: number;
  /** The server's RSS over the minute, sampled every RSS_SAMPLE_MS: the median (what the growth compares), the least and the most. */
  rssMb: number | null;
  rssMinMb: number | null;
  rssMaxMb: number | null;
  lagP50Ms: number;
  lagP99Ms: number;
  orders: number;
  /** Pushes the subscribers received in this minute. */
  pushes: number;
  /** Catalog reads answered in this minute (see catalogReader), and how many failed. */
  reads: number;
  readErrors: number;
}

export interface SoakResult {
  minutes: number;
  ratePerSecond: number;
  subscribers: number;
  /** The storefront's catalog reads beside the orders (searches, pages, products by id), per second. */
  readsPerSecond: number;
  /**
   * RSS in the last minute over RSS in the warm-up's last minute (the warm-up: the first sixth,
   * at least a minute), in %; each the minute's median, so a GC landing just before or after a
   * single reading does not decide it (one reading swung by up to 30 % from minute to minute).
   */
  rssGrowthPct: number | null;
  /** The worst minute's lag p99. */
  lagP99Ms: number;
  warmupMinutes: number;
  curve: SoakMinute[];
}

/** The storefront's catalog reads a second beside the soak's orders (see catalogReader). */
export const SOAK_READS_PER_SECOND = 100;

/** How often the server's RSS is read during a soak minute. */
const RSS_SAMPLE_MS = 2_000;

/** The server's RSS read every RSS_SAMPLE_MS until stopped: its median, least and most, in MB. */
function sampleRss(pid: number) {
  const samples: number[] = [];
  const read = () => {
    const rss = rssMb(pid);
    if (rss !== undefined) samples.push(rss);
  };
  read();
  const timer = setInterval(read, RSS_SAMPLE_MS);
  return () => {
    clearInterval(timer);
    read();
    const sorted = samples.sort((a, b) => a - b);
    if (sorted.length === 0) return { rssMb: null, rssMinMb: null, rssMaxMb: null };
    return {
      rssMb: round(sorted[Math.floor(sorted.length / 2)]!, 1),
      rssMinMb: round(sorted[0]!, 1),
      rssMaxMb: round(sorted.at(-1)!, 1),
    };
  };
}

const PRODUCTS = print(ProductsDocument);
const PRODUCT = print(ProductDocument);
/** Reads in flight at most: past it a read is skipped (counted as failed), so a stalled server cannot pile them up. */
const MAX_READS_IN_FLIGHT = 64;

/**
 * A storefront's catalog reads at a fixed rate, in the background: searches for a sku's number
 * (2,000 different ones, each matching one product: the result cache keeps filling and dropping
 * entries), first pages with and without the inStock filter, and products by id over every
 * stocked product of the bench. What the server keeps per read (cached pages, parsed documents)
 * must stay bounded over the soak too.
 */
function catalogReader(bench: Bench, server: Server, perSecond: number) {
  const gql = new HttpGraphQL(server.url, 16);
  const ids = bench.products.map((p) => p.id);
  const body = (n: number): string => {
    switch (n % 4) {
      case 0:
        return JSON.stringify({
          query: PRODUCTS,
          variables: { first: 20, filter: { search: String((n >> 2) % 2000).padStart(6, "0") } },
        });
      case 1:
        return JSON.stringify({ query: PRODUCTS, variables: { first: 20, filter: { inStock: n % 8 === 1 } } });
      default:
        return JSON.stringify({ query: PRODUCT, variables: { id: ids[Math.floor(Math.random() * ids.length)] } });
    }
  };
  let reads = 0;
  let errors = 0;
  let firstError: string | undefined;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const loop = (async () => {
    const start = performance.now();
    for (let n = 0; !stopped; n++) {
      const wait = start + (n * 1000) / perSecond - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      if (inFlight.size >= MAX_READS_IN_FLIGHT) {
        errors += 1;
        continue;
      }
      const read: Promise<void> = gql
        .post(body(n))
        .then((res) => {
          if (res.status !== 200 || res.errors?.length)
            throw new Error(`catalog read failed (${res.status}): ${JSON.stringify(res.errors)}`);
          reads += 1;
        })
        .catch((error: unknown) => {
          errors += 1;
          firstError ??= String((error as Error)?.message ?? error);
        })
        .finally(() => inFlight.delete(read));
      inFlight.add(read);
    }
  })();
  return {
    /** Reads answered and failed since the last call. */
    take(): { reads: number; readErrors: number } {
      const taken = { reads, readErrors: errors };
      reads = 0;
      errors = 0;
      return taken;
    },
    get firstError() {
      return firstError;
    },
    async stop(): Promise<void> {
      stopped = true;
      await loop;
      await Promise.all(inFlight);
      gql.close();
    },
  };
}

/**
 * One server for `minutes` at `ratePerSecond` placeOrder (open loop), with 1,000 subscribers each
 * watching a product page of its own and the storefront's catalog reads at `readsPerSecond`:
 * every minute, the server's RSS and the commit → read row lag of that minute's orders.
 */
export async function soak(
  bench: Bench,
  server: Server,
  {
    minutes,
    ratePerSecond,
    readsPerSecond = SOAK_READS_PER_SECOND,
    subscribers = 1_000,
  }: { minutes: number; ratePerSecond: number; readsPerSecond?: number; subscribers?: number },
): Promise<SoakResult> {
  const pid = server.proc.child.pid!;
  const clients = await connectSubscribers(bench, server, {
    subscribers,
    pattern: "own",
    client: "lean",
    productIds: bench.products.slice(0, subscribers).map((p) => p.id),
  });
  const curve: SoakMinute[] = [];
  const reader = catalogReader(bench, server, readsPerSecond);
  // A minute of orders per lag measurement, without a warm-up of its own (the soak is one run).
  const minute = { ...bench, settings: { ...bench.settings, warmupMs: 0, lagMs: 60_000 } };
  try {
    for (let m = 1; m <= minutes; m++) {
      const pushedBefore = clients.deliveries.length;
      const rssOfMinute = sampleRss(pid);
      const lag = await lagPhase(minute, server, ratePerSecond);
      const rss = rssOfMinute();
      curve.push({
        minute: m,
        ...rss,
        lagP50Ms: lag.p50,
        lagP99Ms: lag.p99,
        orders: lag.sent,
        pushes: clients.deliveries.length - pushedBefore,
        ...reader.take(),
      });
      clients.deliveries.length = 0; // the soak keeps counts, not every push
      bench.log(
        `  soak minute ${m}/${minutes}: RSS ${rss.rssMb?.toFixed(0)} MB (${rss.rssMinMb?.toFixed(0)}-${rss.rssMaxMb?.toFixed(0)}), lag p50 ${lag.p50} ms p99 ${lag.p99} ms, ${lag.sent} orders, ${curve.at(-1)!.pushes} pushes, ${curve.at(-1)!.reads} catalog reads (${curve.at(-1)!.readErrors} failed)`,
      );
    }
  } finally {
    await reader.stop();
    await clients.close();
  }
  if (reader.firstError) bench.notes.push(`soak: catalog reads failed, first: ${reader.firstError}`);
  const warmupMinutes = Math.max(1, Math.round(minutes / 6));
  const afterWarmup = curve[warmupMinutes - 1]?.rssMb ?? null;
  const last = curve.at(-1)?.rssMb ?? null;
  return {
    minutes,
    ratePerSecond: round(ratePerSecond, 1),
    subscribers: clients.connected,
    readsPerSecond,
    rssGrowthPct:
      afterWarmup !== null && last !== null && minutes > warmupMinutes
        ? round((last / afterWarmup - 1) * 100, 1)
        : null,
    lagP99Ms: Math.max(...curve.map((c) => c.lagP99Ms)),
    warmupMinutes,
    curve,
  };
}
