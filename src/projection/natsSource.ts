import { EventStream, type EventStreamOptions, type StreamReader } from "../relay/eventStream";
import { comparePositions, LOG_START, positionOf, type LogPosition, type RecordedEvent } from "../shared/events";
import type { EventSource } from "./logSource";

/** Readers kept open side by side: one per projection reading its own part of the stream. */
const READERS = 4;
/** Positions remembered with the sequence that follows them (a projection's checkpoint → where to read next). */
const CURSORS = 64;

/**
 * The event stream on NATS JetStream as the projector's source (PROJECTOR_SOURCE=nats). The
 * stream holds the log in its reading order, each event once (see relay.ts), so a checkpoint
 * (the log position of the last event applied) names a place in it: the sequence after it is
 * found by a binary search over the stream's messages the first time, then remembered. The
 * connection is opened on first use and again after a failure.
 */
export function natsSource(options: EventStreamOptions): EventSource & { close(): Promise<void> } {
  let connecting: Promise<EventStream> | undefined;
  const stream = () =>
    (connecting ??= EventStream.connect(options).catch((error: unknown) => {
      connecting = undefined;
      throw error;
    }));
  /** Idle readers, the one used longest ago first; a reader is used by one read at a time (an ordered consumer fetches one batch at a time). */
  const readers: StreamReader[] = [];
  const cursors = new Map<string, number>();
  const key = (p: LogPosition) => `${p.txId}:${p.position}`;
  const remember = (p: LogPosition, nextSeq: number) => {
    cursors.delete(key(p));
    cursors.set(key(p), nextSeq);
    if (cursors.size > CURSORS) cursors.delete(cursors.keys().next().value!);
  };

  /**
   * The sequence of the first event after `after`. The stream is an exact copy of the log, so
   * `after` (a checkpoint: an event applied from it) is in it, and the answer is the sequence
   * right after that event. Anything else (a message missing mid-search, the event not there
   * because the stream lost its tail and the relay has not put it back yet) fails the read: the
   * next poll tries again. A wrong guess here would skip events.
   */
  async function seqAfter(s: EventStream, after: LogPosition): Promise<number> {
    const known = cursors.get(key(after));
    if (known !== undefined) return known;
    const { firstSeq, lastSeq, messages } = await s.info();
    if (messages === 0) return lastSeq + 1; // what comes next (not remembered: the stream may be made anew)
    if (comparePositions(after, LOG_START) === 0) return firstSeq;
    const at = async (seq: number) => {
      const event = await s.eventAt(seq);
      if (!event) throw new Error(`event stream: no message at sequence ${seq}`);
      return event;
    };
    let low = firstSeq;
    let high = lastSeq + 1; // the answer is in [low, high]
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      if (comparePositions(await at(mid), after) > 0) high = mid;
      else low = mid + 1;
    }
    if (low === firstSeq || comparePositions(await at(low - 1), after) !== 0)
      throw new Error(`event stream: the checkpoint ${after.txId}:${after.position} is not in the stream (yet)`);
    remember(after, low);
    return low;
  }

  /** An idle reader, best one already at `seq` (its consumer goes on from there), taken out of the pool while it reads. */
  function takeReader(s: EventStream, seq: number): StreamReader {
    const at = readers.findIndex((r) => r.next === seq);
    if (at >= 0) return readers.splice(at, 1)[0]!;
    return readers.length >= READERS ? readers.shift()! : s.reader();
  }

  return {
    async readAfter(after: LogPosition, limit: number): Promise<RecordedEvent[]> {
      const s = await stream();
      const from = await seqAfter(s, after);
      const reader = takeReader(s, from);
      try {
        const read = await reader.readFrom(from, limit);
        for (const { seq, event } of read) remember(positionOf(event), seq + 1);
        return read.map((r) => r.event);
      } finally {
        readers.push(reader); // most recently used last
        if (readers.length > READERS) void readers.shift()!.close();
      }
    },

    async watch(wake) {
      const watching = (await stream()).watch(wake);
      return {
        async idle() {}, // the stream holds nothing back: whatever it has is readable
        async close() {
          watching.close();
        },
      };
    },

    async backlogAfter(after: LogPosition) {
      const s = await stream();
      const from = await seqAfter(s, after);
      const { lastSeq } = await s.info();
      const events = Math.max(0, lastSeq - from + 1);
      const oldest = events > 0 ? await s.eventAt(from) : undefined;
      return { events, oldestAt: oldest?.occurredAt ?? null };
    },

    async close() {
      await Promise.all(readers.splice(0).map((r) => r.close()));
      const s = await connecting?.catch(() => undefined);
      connecting = undefined;
      await s?.close();
    },
  };
}
