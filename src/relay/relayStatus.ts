import type { Database } from "../db/database";
import { sql } from "../db/sql";
import { backlogAfter } from "../write/eventLog/eventLog";
import { EventStream, type EventStreamOptions } from "./eventStream";
import { RELAY_LEASE } from "./relay";

export interface RelayStatusRow {
  stream: string;
  /** The instance whose relay holds the lease (INSTANCE_ID), if any. */
  leader: string | null;
  /** The stream's last sequence, and the log position of its event. */
  streamSequence: number;
  streamPosition: string | null;
  /** Committed events of the log not yet in the stream, and the age of the oldest of them. */
  lagEvents: number;
  lagSeconds: number;
}

/**
 * How far the event stream is behind the log, asked of both now: the stream's tail from NATS,
 * the events after it from the write database, the relay's leader from the lease's session.
 * For an instance that has both (EVENTS_NATS_URL and DATABASE_URL).
 */
export class RelayStatusQueries {
  private connecting: Promise<EventStream> | undefined;

  constructor(
    private readonly write: Database,
    private readonly options: EventStreamOptions,
  ) {}

  async status(): Promise<RelayStatusRow> {
    const stream = await (this.connecting ??= EventStream.connect(this.options).catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    }));
    const [tail, [lease]] = await Promise.all([
      stream.tail(),
      this.write.sql.query(sql<{ leader: string | null }>`
        SELECT a.application_name AS leader FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.classid = ${RELAY_LEASE}::int::oid AND l.objid = hashtext(${this.options.name})::oid
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         LIMIT 1`),
    ]);
    const backlog = await backlogAfter(this.write.sql, tail.position);
    return {
      stream: this.options.name,
      leader: lease?.leader ?? null,
      streamSequence: tail.seq,
      streamPosition: tail.seq > 0 ? tail.position.position.toString() : null,
      lagEvents: backlog.events,
      lagSeconds: backlog.oldestAt ? Math.max(0, (Date.now() - backlog.oldestAt.getTime()) / 1000) : 0,
    };
  }

  async close(): Promise<void> {
    const stream = await this.connecting?.catch(() => undefined);
    this.connecting = undefined;
    await stream?.close();
  }
}
