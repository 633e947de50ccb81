import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  DeliverPolicy,
  StorageType,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { LOG_START, type LogPosition, type RecordedEvent } from "../shared/events";
import {
  ALL_SUBJECTS,
  POSITION_HEADER,
  fromMessageBody,
  subjectOf,
  toMessageBody,
  type EventMessageBody,
} from "./eventMessage";

/** The last message of the stream: its sequence and the log position of its event. */
export interface StreamTail {
  seq: number;
  position: LogPosition;
}

export interface EventStreamOptions {
  servers: string[];
  /** EVENTS_STREAM */
  name: string;
  /** This connection's name on the server (monitoring). */
  connectionName: string;
}

const encoder = new TextEncoder();

/**
 * The event log's copy on NATS JetStream: one stream, subjects shop.events.>, file storage.
 * The relay appends to it with an expected last sequence; readers get messages by sequence.
 */
export class EventStream {
  private constructor(
    readonly name: string,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  /** Connects (reconnecting by itself for as long as it runs). Fails when no server answers now. */
  static async connect(options: EventStreamOptions): Promise<EventStream> {
    const nc = await connect({
      servers: options.servers,
      name: options.connectionName,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5000,
    });
    try {
      const jsm = await jetstreamManager(nc);
      return new EventStream(options.name, nc, jetstream(nc), jsm);
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /** Creates the stream, or updates its replicas and subjects when they differ. */
  async ensure(replicas: number): Promise<void> {
    const wanted = { subjects: [ALL_SUBJECTS], num_replicas: replicas };
    try {
      const info = await this.jsm.streams.info(this.name);
      const { subjects, num_replicas } = info.config;
      if (num_replicas !== replicas || subjects?.length !== 1 || subjects[0] !== ALL_SUBJECTS)
        await this.jsm.streams.update(this.name, wanted);
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
      await this.jsm.streams.add({ name: this.name, ...wanted, storage: StorageType.File });
    }
  }

  /** Where the stream ends: read at start and after every failure, the relay's only memory. */
  async tail(): Promise<StreamTail> {
    const info = await this.jsm.streams.info(this.name);
    const seq = info.state.last_seq;
    if (info.state.messages === 0) return { seq, position: LOG_START };
    const last = await this.jsm.streams.getMessage(this.name, { seq });
    if (!last) throw new Error(`stream ${this.name}: no message at its last sequence ${seq}`);
    const body = last.json<EventMessageBody>();
    return { seq, position: { txId: BigInt(body.txId), position: BigInt(body.position) } };
  }

  /**
   * Appends the events after `tail`, all sent at once, acks awaited together. Each message
   * expects the stream's last sequence to be the one before it: if anything else was appended
   * meanwhile (another relay, a retry that did land), the server refuses it and every later one
   * of the batch, and this throws. Answers the new tail.
   */
  async append(tail: StreamTail, events: RecordedEvent[], timeoutMs: number): Promise<StreamTail> {
    const acks = await Promise.allSettled(
      events.map((e, i) => {
        const h = headers();
        h.set(POSITION_HEADER, e.position.toString());
        return this.js.publish(subjectOf(e), encoder.encode(JSON.stringify(toMessageBody(e))), {
          msgID: e.position.toString(),
          headers: h,
          expect: { streamName: this.name, lastSequence: tail.seq + i },
          timeout: timeoutMs,
        });
      }),
    );
    acks.forEach((ack, i) => {
      if (ack.status === "rejected") throw ack.reason;
      // Within the dedup window the server answers a message it already holds with a duplicate
      // ack (before it looks at the expected sequence): another relay, or a retry, got there first.
      if (ack.value.duplicate)
        throw new TailMovedError(`message ${i} of the batch is already in the stream, at ${ack.value.seq}`);
      if (ack.value.seq !== tail.seq + i + 1)
        throw new TailMovedError(`message ${i} of the batch stored at ${ack.value.seq}, not ${tail.seq + i + 1}`);
    });
    const last = events.at(-1);
    return last ? { seq: tail.seq + events.length, position: { txId: last.txId, position: last.position } } : tail;
  }

  /** Reads the stream in order, from a sequence on (see StreamReader). */
  reader(): StreamReader {
    return new StreamReader(this.name, this.js, this.jsm);
  }

  /** The event stored at a sequence. */
  async eventAt(seq: number): Promise<RecordedEvent | undefined> {
    const m = await this.jsm.streams.getMessage(this.name, { seq });
    return m ? fromMessageBody(m.json<EventMessageBody>()) : undefined;
  }

  /** Calls wake for every message appended to the stream's subjects (a plain subscription: no ack, no storage). */
  watch(wake: () => void): { close(): void } {
    const sub = this.nc.subscribe(ALL_SUBJECTS, { callback: () => wake() });
    return { close: () => sub.unsubscribe() };
  }

  async info(): Promise<{ firstSeq: number; lastSeq: number; messages: number }> {
    const info = await this.jsm.streams.info(this.name);
    return { firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, messages: info.state.messages };
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}

class TailMovedError extends Error {}

/**
 * The stream did not end where the appender thought: the server refused a message for its
 * expected last sequence, or already held it (a duplicate within the dedup window).
 */
export const isTailMoved = (error: unknown): boolean =>
  error instanceof TailMovedError ||
  (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence);

/**
 * Reads the stream in sequence order through one ordered consumer (the server's cheapest kind:
 * no acks, recreated by the client on a gap), moved only when asked for another sequence.
 */
export class StreamReader {
  private consumer: Consumer | undefined;
  /** The sequence this reader delivers next. */
  next = 0;

  constructor(
    private readonly stream: string,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  /** The events stored from sequence `from` on, at most `limit`: what the stream holds now, without waiting for more. */
  async readFrom(from: number, limit: number): Promise<{ seq: number; event: RecordedEvent }[]> {
    const info = await this.jsm.streams.info(this.stream);
    const last = Math.min(info.state.last_seq, from + limit - 1);
    if (last < from) {
      if (this.next !== from) await this.close();
      this.next = from;
      return [];
    }
    if (!this.consumer || this.next !== from) {
      // moved: a consumer of its own from there
      await this.close();
      this.consumer = await this.js.consumers.get(this.stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: from,
      });
      this.next = from;
    }
    const out: { seq: number; event: RecordedEvent }[] = [];
    try {
      const messages = await this.consumer.fetch({ max_messages: last - from + 1, expires: 5000 });
      for await (const m of messages) {
        // Strictly the next sequence: a consumer that skips one (its server gone, recreated
        // elsewhere) must not make a reader skip an event. Start over at the asked sequence.
        if (m.seq !== from + out.length)
          throw new Error(`stream ${this.stream}: expected sequence ${from + out.length}, got ${m.seq}`);
        out.push({ seq: m.seq, event: fromMessageBody(m.json<EventMessageBody>()) });
        this.next = m.seq + 1;
        if (m.seq >= last) break;
      }
    } catch (error) {
      await this.close(); // start over at the asked sequence next time
      throw error;
    }
    // Fewer than the stream holds, the fetch having expired: in a cluster the consumer may sit on
    // a replica still catching up. The next read makes a new one rather than wait on this one again.
    if (out.length < last - from + 1) await this.close();
    return out;
  }

  async close(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.delete().catch(() => undefined);
  }
}
