import type { PrismaClient } from "../generated/prisma/client";
import { PROJECTION_LEASES } from "../projection/leases";

export interface ProjectionStatusRow {
  name: string;
  position: string;
  lagEvents: number;
  lagSeconds: number;
  status: string;
  lastError: string | null;
  failedPosition: string | null;
  updatedAt: Date;
  /** The instance that holds the projection's lease (its session's application_name), if any. */
  leader: string | null;
  /** When the projector last measured the lag; null when none has yet. */
  lagMeasuredAt: Date | null;
}

/**
 * Projection health: the checkpoint, and how far behind its source it is, as the projector that
 * leads it last measured (every PROJECTOR_POLL_MS): all from the read database. Lag in seconds is
 * the age of the oldest unprojected event when measured, so a long-open transaction that holds
 * every projection back shows up here, growing with each measurement. When the measurement is
 * older than `staleAfterMs` (no projector measures: none runs, or it is stuck) while events were
 * pending, the age is taken as of now instead: it keeps growing, and readiness sees it.
 * Admin-only and scraped by /metrics: through Prisma.
 */
export class ProjectionQueries {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly staleAfterMs = 5000,
  ) {}

  async statuses(): Promise<ProjectionStatusRow[]> {
    // tx_id is an xid8, which Prisma's models cannot read: a typed raw query.
    const rows = await this.prisma.$queryRaw<
      {
        name: string;
        tx_id: string;
        position: bigint;
        status: string;
        last_error: string | null;
        failed_position: bigint | null;
        updated_at: Date;
        leader: string | null;
        lag_events: bigint | null;
        lag_oldest_at: Date | null;
        lag_measured_at: Date | null;
      }[]
    >`SELECT c.name, c.tx_id::text AS tx_id, c.position, c.status, c.last_error, c.failed_position, c.updated_at,
             lag.events AS lag_events, lag.oldest_at AS lag_oldest_at, lag.measured_at AS lag_measured_at,
             (SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                 AND l.classid = ${PROJECTION_LEASES}::int::oid AND l.objid = hashtext(c.name)::oid
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               LIMIT 1) AS leader
        FROM "read"."projection_checkpoints" c LEFT JOIN "read"."projection_lag" lag ON lag.name = c.name
       ORDER BY c.name`;
    const now = Date.now();
    return rows.map((r) => ({
      name: r.name,
      position: r.position.toString(),
      lagEvents: Number(r.lag_events ?? 0),
      lagSeconds: this.lagSeconds(r.lag_oldest_at, r.lag_measured_at, now),
      status: r.status,
      lastError: r.last_error,
      failedPosition: r.failed_position === null ? null : r.failed_position.toString(),
      updatedAt: new Date(r.updated_at),
      leader: r.leader,
      lagMeasuredAt: r.lag_measured_at && new Date(r.lag_measured_at),
    }));
  }

  private lagSeconds(oldestAt: Date | null, measuredAt: Date | null, now: number): number {
    if (!oldestAt || !measuredAt) return 0;
    const measured = new Date(measuredAt).getTime();
    const asOf = now - measured > this.staleAfterMs ? now : measured;
    return Math.max(0, (asOf - new Date(oldestAt).getTime()) / 1000);
  }
}
