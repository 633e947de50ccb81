import type { Database } from "../db/database";
import { ProjectionQueries } from "../query/projections.queries";
import { backlogAfter } from "../write/eventLog/eventLog";

/**
 * The projections' status (from the read database) and lag, measured against the event log of
 * the write database (the same one unless the read side has its own).
 */
export const projectionStatus = (read: Database, write: Database = read): ProjectionQueries =>
  new ProjectionQueries(read.prisma, (after) => backlogAfter(write.sql, after));
