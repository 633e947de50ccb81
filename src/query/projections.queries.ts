import type { PrismaClient } from "../generated/prisma/client";
import { PROJECTION_LEASES } from "../projection/leases";
import type { LogPosition } from "../shared/events";

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
}

/** How far a reader at a position is behind the committed event log (given by the composition root). */
export type BacklogOf = (after: LogPosition) => Promise<{ events: number; oldestAgeSeconds: number }>;

/**
 * Projection health: the checkpoint, and how far behind the committed log it is. Lag in seconds
 * is the age of the oldest unprojected event, so a long-open transaction that holds every
 * projection back shows up here. Admin-only and scraped by /metrics: through Prisma.
 */
export class ProjectionQueries {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly backlogOf: BacklogOf,
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
      }[]
    >`SELECT c.name, c.tx_id::text AS tx_id, c.position, c.status, c.last_error, c.failed_position, c.updated_at,
             (SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                 AND l.classid = ${PROJECTION_LEASES}::int::oid AND l.objid = hashtext(c.name)::oid
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               LIMIT 1) AS leader
        FROM "read"."projection_checkpoints" c ORDER BY c.name`;
    return Promise.all(
      rows.map(async (r) => {
        const backlog = await this.backlogOf({ txId: BigInt(r.tx_id), position: BigInt(r.position) });
        return {
          name: r.name,
          position: r.position.toString(),
          lagEvents: backlog.events,
          lagSeconds: backlog.oldestAgeSeconds,
          status: r.status,
          lastError: r.last_error,
          failedPosition: r.failed_position === null ? null : r.failed_position.toString(),
          updatedAt: new Date(r.updated_at),
          leader: r.leader,
        };
      }),
    );
  }
}
