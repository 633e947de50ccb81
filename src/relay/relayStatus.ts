import type { Database } from "../db/database";
import { sql } from "../db/sql";
import { EventStream, type EventStreamOptions } from "./eventStream";
import { RELAY_LEASE, type Relay } from "./relay";

export interface RelayStatusRow {
  stream: string;
  /** The instance whose relay holds the lease (INSTANCE_ID), if any. */
  leader: string | null;
  /** The stream's last sequence, and the log position of its event. */
  streamSequence: number;
  streamPosition: string | null;
  /** As the leading relay last measured: null on an instance whose relay does not lead. */
  lagEvents: number | null;
  lagSeconds: number | null;
}

/**
 * The event stream's state: its tail from NATS, the relay's leader from the lease's session
 * (a system view of the write database, no table), and the lag the relay measured, when this
 * instance's relay is the one that leads. Reads no write table: the lag is the relay's to measure.
 * For an instance that has both EVENTS_NATS_URL and DATABASE_URL.
 */
export class RelayStatusQueries {
  private connecting: Promise<EventStream> | undefined;

  constructor(
    private readonly write: Database,
    private readonly options: EventStreamOptions,
    private readonly relay?: Relay,
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
    const lag = this.relay?.lag;
    return {
      stream: this.options.name,
      leader: lease?.leader ?? null,
      streamSequence: tail.seq,
      streamPosition: tail.seq > 0 ? tail.position.position.toString() : null,
      lagEvents: lag?.events ?? null,
      lagSeconds: lag?.seconds ?? null,
    };
  }

  async close(): Promise<void> {
    const stream = await this.connecting?.catch(() => undefined);
    this.connecting = undefined;
    await stream?.close();
  }
}
