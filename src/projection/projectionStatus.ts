import type { Database } from "../db/database";
import { ProjectionQueries } from "../query/projections.queries";
import { backlogAfter } from "../write/eventLog/eventLog";

/** The projections' status and lag: their checkpoints measured against the event log of `db`. */
export const projectionStatus = (db: Database): ProjectionQueries =>
  new ProjectionQueries(db.prisma, (after) => backlogAfter(db.sql, after));
