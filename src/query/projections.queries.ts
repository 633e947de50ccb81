import type { PrismaClient } from "../generated/prisma/client";
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
      }[]
    >`SELECT name, tx_id::text AS tx_id, position, status, last_error, failed_position, updated_at
        FROM "read"."projection_checkpoints" ORDER BY name`;
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
        };
      }),
    );
  }
}
