-- Read side. What the projector last measured of how far each projection is behind its source
-- (the event log of the write database, or later the event stream), so that the query side
-- shows the lag from the read database alone, wherever the write database is.

CREATE TABLE "read"."projection_lag" (
  "name"        TEXT PRIMARY KEY,
  "events"      BIGINT NOT NULL,
  "oldest_at"   TIMESTAMPTZ(3),
  "measured_at" TIMESTAMPTZ(3) NOT NULL,
  "measured_by" TEXT NOT NULL
);
