import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { TestDatabase } from "./db";

const GET_CONCURRENCY = 64;

/** A message of the event stream as another service sees it. */
export interface StreamedMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  shopPosition: string | undefined;
  body: Record<string, unknown>;
}

/**
 * Every message of the stream, in sequence order, each asked of the stream's leader by its
 * sequence (not through a consumer: in a cluster a consumer may be placed on a replica still
 * catching up after a restart, and deliver late).
 */
export async function readWholeStream(servers: string[], stream = "SHOP_EVENTS"): Promise<StreamedMessage[]> {
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(stream);
    const out: StreamedMessage[] = [];
    for (let from = state.first_seq; state.messages > 0 && from <= state.last_seq; from += GET_CONCURRENCY) {
      const seqs = Array.from({ length: Math.min(GET_CONCURRENCY, state.last_seq - from + 1) }, (_, i) => from + i);
      for (const m of await Promise.all(seqs.map((seq) => jsm.streams.getMessage(stream, { seq })))) {
        if (!m) continue; // a sequence the stream does not hold (none here: the relay never deletes)
        out.push({
          seq: m.seq,
          subject: m.subject,
          msgId: m.header?.get("Nats-Msg-Id"),
          shopPosition: m.header?.get("Shop-Position"),
          body: m.json<Record<string, unknown>>(),
        });
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** The event log as the stream must hold it: every event once, in (tx_id, position) order, in the contract's shape. */
export async function expectedStream(db: Pick<TestDatabase, "sql">): Promise<Omit<StreamedMessage, "seq">[]> {
  const rows = await db.sql<{
    position: string;
    tx_id: string;
    stream_id: string;
    stream_type: string;
    stream_version: number;
    type: string;
    data: unknown;
    metadata: unknown;
    occurred_at: Date;
  }>(
    // ORDER BY the table's columns (e.): bare, tx_id and position would be the text output
    // columns, and '100012' sorts before '99871' once the server's transaction ids gain a digit.
    `SELECT e.position::text AS position, e.tx_id::text AS tx_id, e.stream_id, e.stream_type, e.stream_version, e.type,
            e.data, e.metadata, e.occurred_at
       FROM "write"."events" AS e ORDER BY e.tx_id, e.position`,
  );
  return rows.map((r) => ({
    subject: `shop.events.${r.stream_type}.${r.type}`,
    msgId: r.position,
    shopPosition: r.position,
    body: {
      position: r.position,
      txId: r.tx_id,
      streamId: r.stream_id,
      streamType: r.stream_type,
      streamVersion: r.stream_version,
      type: r.type,
      data: r.data,
      metadata: r.metadata,
      occurredAt: new Date(r.occurred_at).toISOString(),
    },
  }));
}

/** The stream equals the log: no event missing, none twice, in the log's reading order. */
export async function streamMatchesLog(
  servers: string[],
  db: Pick<TestDatabase, "sql">,
): Promise<{
  ok: boolean;
  streamed: number;
  logged: number;
  firstDifference: number;
  /** At the first difference: the stream's message and the log's event there (for a failure's message). */
  difference?: { streamed: unknown; logged: unknown };
}> {
  const [streamed, logged] = await Promise.all([readWholeStream(servers), expectedStream(db)]);
  const bare = streamed.map(({ seq: _seq, ...m }) => m);
  let firstDifference = -1;
  for (let i = 0; i < Math.max(bare.length, logged.length); i++) {
    if (JSON.stringify(bare[i]) !== JSON.stringify(logged[i])) {
      firstDifference = i;
      break;
    }
  }
  const ok = firstDifference === -1;
  return {
    ok,
    streamed: streamed.length,
    logged: logged.length,
    firstDifference,
    ...(ok ? {} : { difference: { streamed: streamed[firstDifference], logged: logged[firstDifference] } }),
  };
}
