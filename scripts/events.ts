// The event stream as another service sees it (EVENTS_NATS_URL, EVENTS_STREAM):
//   npm run events -- tail                            new events from now on, until Ctrl-C
//   npm run events -- tail --from 1                   from the start of the stream
//   npm run events -- tail --durable mailer           as the durable consumer "mailer": resumes where it left off
//   npm run events -- tail --subject 'shop.events.order.>' --count 10
// Written as a consumer in another service would be: the plain NATS client, a durable consumer
// that acknowledges each message once handled, and side effects deduplicated by Shop-Position
// (JetStream redelivers what was not acknowledged, e.g. after a crash between effect and ack).
import { connect } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type Consumer } from "@nats-io/jetstream";
import { ConfigError, loadConfig } from "../src/config";

const [command, ...args] = process.argv.slice(2);
const usage =
  "usage: npm run events -- tail [--from <sequence>] [--durable <name>] [--subject <subject>] [--count <n>]";
function option(name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
}
if (command !== "tail") {
  console.error(usage);
  process.exit(2);
}
const from = option("from") === undefined ? undefined : Number(option("from"));
const count = option("count") === undefined ? Infinity : Number(option("count"));
const durable = option("durable");
const subject = option("subject") ?? "shop.events.>";
if ((from !== undefined && !(from >= 1)) || !(count >= 1)) {
  console.error(usage);
  process.exit(2);
}

let config;
try {
  config = loadConfig();
} catch (error) {
  console.error(`events: ${(error as ConfigError).message}`);
  process.exit(2);
}
if (config.eventsNatsUrls.length === 0) {
  console.error("events: set EVENTS_NATS_URL to the NATS servers of the event stream");
  process.exit(2);
}

const nc = await connect({ servers: config.eventsNatsUrls, name: "npm run events" });
const stopping = () => void nc.drain();
process.on("SIGINT", stopping);
process.on("SIGTERM", stopping);
try {
  const stream = config.eventsStream;
  const js = jetstream(nc);
  const start =
    from === undefined
      ? { deliver_policy: DeliverPolicy.New }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from };
  let consumer: Consumer;
  if (durable) {
    // Created once with where to start; later runs resume after the last acknowledged message.
    const jsm = await jetstreamManager(nc);
    await jsm.consumers
      .add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, filter_subject: subject, ...start })
      .catch(() => undefined); // it exists: keep its position
    consumer = await js.consumers.get(stream, durable);
  } else {
    consumer = await js.consumers.get(stream, { filter_subjects: subject, ...start });
  }

  // A side effect of one's own (here: printing) done once per event, even when redelivered.
  const handled = new Set<string>();
  let seen = 0;
  const messages = await consumer.consume();
  for await (const m of messages) {
    const position = m.headers?.get("Shop-Position") ?? "";
    if (!handled.has(position)) {
      handled.add(position);
      const body = m.json<{ type: string; streamId: string; streamVersion: number; occurredAt: string }>();
      console.log([m.seq, position, m.subject, `${body.streamId}@${body.streamVersion}`, body.occurredAt].join("\t"));
    }
    m.ack();
    if (++seen >= count) break;
  }
} finally {
  await nc.drain().catch(() => undefined);
}
