import type { Database } from "../../db/database";
import { backlogAfter } from "../../eventLog/eventLog";

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

/**
 * Projection health: the checkpoint, and how far behind the committed log it is. Lag in seconds
 * is the age of the oldest unprojected event, so a long-open transaction that holds every
 * projection back shows up here.
 */
export class ProjectionQueries {
  constructor(private readonly db: Pick<Database, "prisma" | "sql">) {}

  async statuses(): Promise<ProjectionStatusRow[]> {
    const rows = await this.db.prisma.$queryRawUnsafe<
      {
        name: string;
        tx_id: string;
        position: bigint;
        status: string;
        last_error: string | null;
        failed_position: bigint | null;
        updated_at: Date;
      }[]
    >(
      `SELECT name, tx_id::text AS tx_id, position, status, last_error, failed_position, updated_at FROM "read"."projection_checkpoints" ORDER BY name`,
    );
    return Promise.all(
      rows.map(async (r) => {
        const backlog = await backlogAfter(this.db.sql, { txId: BigInt(r.tx_id), position: BigInt(r.position) });
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
