import { setTimeout as sleep } from "node:timers/promises";

export interface LoadResult {
  /** Requests completed inside the measured window. */
  completed: number;
  /** Requests completed in all, warm-up included. */
  total: number;
  errors: number;
  firstError: string | undefined;
  seconds: number;
  perSecond: number;
  /** Latency (ms) of every request that started and ended inside the measured window. */
  latencies: number[];
}

/**
 * Closed loop: `concurrency` workers each send the next request as soon as the previous one
 * answered. Requests during the warm-up are not counted; throughput is completions inside
 * [warm-up end, end] divided by the window.
 */
export async function closedLoop(options: {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  task: (n: number, worker: number) => Promise<void>;
}): Promise<LoadResult> {
  const start = performance.now();
  const windowStart = start + options.warmupMs;
  const end = windowStart + options.durationMs;
  const latencies: number[] = [];
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let n = 0;
  let total = 0;
  const worker = async (_: unknown, id: number) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await options.task(n++, id);
        const t1 = performance.now();
        total += 1;
        if (t1 >= windowStart && t1 <= end) {
          completed += 1;
          if (t0 >= windowStart) latencies.push(t1 - t0);
        }
      } catch (error) {
        errors += 1;
        firstError ??= String((error as Error)?.message ?? error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = options.durationMs / 1000;
  return { completed, total, errors, firstError, seconds, perSecond: completed / seconds, latencies };
}

/**
 * Open loop: requests are started on a fixed schedule whatever the answers (so a slow system
 * is not politely given less work), with a cap on requests in flight.
 */
export async function openLoop(options: {
  ratePerSecond: number;
  durationMs: number;
  maxInFlight: number;
  task: (n: number) => Promise<void>;
  /** Stops starting requests (those in flight are awaited) before the duration is over. */
  signal?: AbortSignal;
}): Promise<{ sent: number; errors: number; skipped: number; firstError: string | undefined }> {
  const interval = 1000 / options.ratePerSecond;
  const start = performance.now();
  const total = Math.floor((options.durationMs / 1000) * options.ratePerSecond);
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  let errors = 0;
  let skipped = 0;
  let firstError: string | undefined;
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    if (options.signal?.aborted) break;
    if (inFlight.size >= options.maxInFlight) {
      skipped += 1;
      continue;
    }
    sent += 1;
    const p: Promise<void> = options
      .task(i)
      .catch((error: unknown) => {
        errors += 1;
        firstError ??= String((error as Error)?.message ?? error);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return { sent, errors, skipped, firstError };
}
