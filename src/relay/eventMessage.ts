import type { EventMetadata, RecordedEvent } from "../shared/events";

// An event of the log as a NATS JetStream message (../shared/CONTRACT.md, "the event broker"):
// subject shop.events.<streamType>.<type>, headers Nats-Msg-Id and Shop-Position set to the
// position, and a JSON body with the log's data and metadata unchanged.

export const SUBJECT_PREFIX = "shop.events";
export const ALL_SUBJECTS = `${SUBJECT_PREFIX}.>`;
export const POSITION_HEADER = "Shop-Position";

/** The body of a message, as other services read it (position and txId as decimal strings). */
export interface EventMessageBody {
  position: string;
  txId: string;
  streamId: string;
  streamType: string;
  streamVersion: number;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  occurredAt: string;
}

export const subjectOf = (e: Pick<RecordedEvent, "streamType" | "type">) =>
  `${SUBJECT_PREFIX}.${e.streamType}.${e.type}`;

export function toMessageBody(e: RecordedEvent): EventMessageBody {
  return {
    position: e.position.toString(),
    txId: e.txId.toString(),
    streamId: e.streamId,
    streamType: e.streamType,
    streamVersion: e.streamVersion,
    type: e.type,
    data: e.data,
    metadata: e.metadata,
    occurredAt: e.occurredAt.toISOString(),
  };
}

export function fromMessageBody(body: EventMessageBody): RecordedEvent {
  return {
    position: BigInt(body.position),
    txId: BigInt(body.txId),
    streamId: body.streamId,
    streamType: body.streamType,
    streamVersion: body.streamVersion,
    type: body.type,
    data: body.data,
    metadata: body.metadata,
    occurredAt: new Date(body.occurredAt),
  } as RecordedEvent;
}
