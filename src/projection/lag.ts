import type { Database } from "../db/database";
import { saveLag, type Checkpoint } from "./checkpoints";
import type { EventSource } from "./logSource";

/**
 * Measures how far each checkpoint is behind the source and stores it in the read database,
 * where the query side reads it (`projections`, /metrics, readiness) without a connection to
 * the source: the write database may be another server, or absent behind a broker.
 */
export async function measureLag(
  read: Database,
  source: EventSource,
  checkpoints: Checkpoint[],
  measuredBy: string,
): Promise<void> {
  if (checkpoints.length === 0) return;
  // Projections at the same place (the usual case) share one look at the source.
  const backlogs = new Map<string, ReturnType<EventSource["backlogAfter"]>>();
  const backlogOf = (c: Checkpoint) => {
    const key = `${c.txId}:${c.position}`;
    if (!backlogs.has(key)) backlogs.set(key, source.backlogAfter(c));
    return backlogs.get(key)!;
  };
  const lags = await Promise.all(checkpoints.map(async (c) => ({ name: c.name, ...(await backlogOf(c)) })));
  await read.sql.query(saveLag(measuredBy, lags));
}
