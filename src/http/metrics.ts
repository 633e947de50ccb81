import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ProjectionQueries, ProjectionStatusRow } from "../query/projections.queries";
import type { CommandObserver } from "../write/commandBus";
import type { ProjectorObserver } from "../projection/projector";
import type { ReadReplicasObserver, ReplicaStatus } from "../db/replicas";
import type { RelayObserver } from "../relay/relay";
import type { DueDeadlines, OrderExpiryObserver } from "../process/orderExpiry";
import type { CatalogCacheKind, CatalogCacheObserver, CatalogCacheOutcome } from "../query/catalogCache";

/** How long a scrape waits for a database read before its gauges keep their last values. */
export const SCRAPE_READ_MS = 1000;

/** Prometheus metrics of one app instance (own registry, so several instances can share a process). */
export class Metrics
  implements
    CommandObserver,
    ProjectorObserver,
    ReadReplicasObserver,
    RelayObserver,
    OrderExpiryObserver,
    CatalogCacheObserver
{
  readonly registry = new Registry();
  private readonly commandSeconds = new Histogram({
    name: "shop_command_duration_seconds",
    help: "Command latency, from dispatch to commit, retries included.",
    labelNames: ["command", "outcome"],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly commandAttempts = new Counter({
    name: "shop_command_retries_total",
    help: "Command attempts retried after a serialization failure, deadlock or concurrent change.",
    labelNames: ["command"],
    registers: [this.registry],
  });
  private readonly shed = new Counter({
    name: "shop_mutations_shed_total",
    help: "Mutations refused with OVERLOADED: the write database's connection queue was standing (MUTATION_QUEUE_MS).",
    registers: [this.registry],
  });
  private readonly batchSeconds = new Histogram({
    name: "shop_projection_batch_duration_seconds",
    help: "Time to apply one batch of events to a projection (one transaction).",
    labelNames: ["projection"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });
  private readonly projectedEvents = new Counter({
    name: "shop_projection_events_total",
    help: "Events applied, per projection.",
    labelNames: ["projection"],
    registers: [this.registry],
  });
  private readonly reads = new Counter({
    name: "shop_read_queries_total",
    help: "Read statements of queries sent to a read replica, or to the read database itself (target primary), when READ_REPLICA_URLS names replicas.",
    labelNames: ["target"],
    registers: [this.registry],
  });
  private readonly catalogCache = new Counter({
    name: "shop_catalog_cache_lookups_total",
    help: "Lookups of the catalog result cache (CATALOG_RESULT_CACHE_ENTRIES): kind row (a product by id) or page, result hit, shared (the same read already under way) or miss.",
    labelNames: ["kind", "result"],
    registers: [this.registry],
  });
  private readonly relayed = new Counter({
    name: "shop_relay_events_total",
    help: "Events this instance's relay published to the event stream (acknowledged by JetStream).",
    registers: [this.registry],
  });
  private readonly relayLagEvents = new Gauge({
    name: "shop_relay_lag_events",
    help: "Committed events of the log not yet in the event stream, as the leading relay last measured.",
    registers: [this.registry],
  });
  private readonly relayLagSeconds = new Gauge({
    name: "shop_relay_lag_seconds",
    help: "Age of the oldest committed event not yet in the event stream, as the leading relay last measured.",
    registers: [this.registry],
  });
  private readonly relayLeader = new Gauge({
    name: "shop_relay_leader",
    help: "1 when this instance's relay holds the lease and publishes.",
    registers: [this.registry],
  });
  private readonly untrusted = new Counter({
    name: "shop_untrusted_documents_total",
    help: "Documents sent as text by non-admins, not in the trusted-documents manifest: run (TRUSTED_DOCUMENTS=allow) or refused (only).",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  private readonly expired = new Counter({
    name: "shop_order_expiries_total",
    help: "Orders this instance cancelled because their payment deadline passed (PAYMENT_TIMEOUT).",
    registers: [this.registry],
  });
  private readonly expiryLeader = new Gauge({
    name: "shop_order_expiry_leader",
    help: "1 when this instance holds the order expiry's lease and dispatches the payment deadlines.",
    registers: [this.registry],
  });
  private readonly leader = new Gauge({
    name: "shop_projector_leader",
    help: "1 when this instance leads at least one projection.",
    registers: [this.registry],
  });

  /** The age of each scrape read's values, as a scrape shows them (see scrapeRead). */
  private readonly readAges = new Map<string, () => Promise<number>>();

  constructor(
    projections: ProjectionQueries,
    subscribers: () => number,
    replicas: () => ReplicaStatus[] = () => [],
    private readonly scrapeReadMs = SCRAPE_READ_MS,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: "shop_" });
    const ages = this.readAges;
    new Gauge({
      name: "shop_metrics_read_age_seconds",
      help: "Age of the values a scrape shows from a database read (read: projections, deadlines): 0 when the scrape read them; else the read failed or took longer than the scrape waits, and this is the time since the last read that succeeded (-1: none has).",
      labelNames: ["read"],
      registers: [this.registry],
      async collect() {
        await Promise.all([...ages].map(async ([read, age]) => this.set({ read }, await age())));
      },
    });
    const statuses = this.scrapeRead("projections", () => projections.statuses());
    const projectionGauge = (name: string, help: string, value: (s: ProjectionStatusRow) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["projection"],
        registers: [this.registry],
        async collect() {
          const rows = await statuses();
          if (!rows) return;
          this.reset();
          for (const s of rows) this.set({ projection: s.name }, value(s));
        },
      });
    projectionGauge("shop_projection_lag_events", "Committed events not yet applied.", (s) => s.lagEvents);
    projectionGauge("shop_projection_lag_seconds", "Age of the oldest event not yet applied.", (s) => s.lagSeconds);
    projectionGauge(
      "shop_projection_lag_measured_seconds_ago",
      "How old the lag figures are: seconds since the projection's leader last measured them (-1: never).",
      (s) => (s.lagMeasuredAt ? (Date.now() - s.lagMeasuredAt.getTime()) / 1000 : -1),
    );
    projectionGauge("shop_projection_failed", "1 when the projection is halted on a poison event.", (s) =>
      s.status === "FAILED" ? 1 : 0,
    );
    const replicaGauge = (name: string, help: string, value: (r: ReplicaStatus) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["replica"],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const r of replicas()) this.set({ replica: r.name }, value(r));
        },
      });
    replicaGauge("shop_read_replica_up", "1 when the replica answered the last look, as a standby.", (r) => +r.up);
    replicaGauge("shop_read_replica_serving", "1 when queries may read from the replica now.", (r) => +r.serving);
    replicaGauge(
      "shop_read_replica_lag_bytes",
      "WAL of the read database not yet replayed by the replica.",
      (r) => r.lagBytes,
    );
    replicaGauge(
      "shop_read_replica_lag_seconds",
      "How old the replica's data is: time since the read database was where the replica is now.",
      (r) => r.lagSeconds,
    );
    new Gauge({
      name: "shop_graphql_subscriptions",
      help: "Live graphql-ws subscriptions on this instance.",
      registers: [this.registry],
      collect() {
        this.set(subscribers());
      },
    });
  }

  /** Whether mutations are shed now, and how many transactions wait for a write connection (instances with commands). */
  watchShedding(overloaded: () => boolean, queued: () => number): void {
    new Gauge({
      name: "shop_mutations_shedding",
      help: "1 while mutations are refused with OVERLOADED: the write database's connection queue is standing (MUTATION_QUEUE_MS).",
      registers: [this.registry],
      collect() {
        this.set(overloaded() ? 1 : 0);
      },
    });
    new Gauge({
      name: "shop_write_transactions_waiting",
      help: "Transactions waiting now for a connection to the write database (the queue load shedding watches).",
      registers: [this.registry],
      collect() {
        this.set(queued());
      },
    });
  }

  /** The payment deadlines due now, read from the write database when scraped (instances with commands). */
  watchDeadlines(due: () => Promise<DueDeadlines>): void {
    const read = this.scrapeRead("deadlines", due);
    new Gauge({
      name: "shop_order_deadlines_due",
      help: "PLACED orders whose payment deadline has passed, not yet expired (a few for a moment is normal; growing means the expiry is stuck).",
      registers: [this.registry],
      async collect() {
        const deadlines = await read();
        if (deadlines) this.set(deadlines.orders);
      },
    });
    new Gauge({
      name: "shop_order_deadlines_oldest_due_seconds",
      help: "Seconds since the oldest of those deadlines passed (0 when none is due).",
      registers: [this.registry],
      async collect() {
        const deadlines = await read();
        if (deadlines) this.set(deadlines.oldestSeconds);
      },
    });
  }

  /**
   * A database read for the gauges of a scrape, made once per scrape: prom-client collects the
   * gauges concurrently, so each one awaits the same read (setting one gauge from another's
   * collect() would leave the others a scrape behind, or empty on the first scrape). A scrape
   * waits for it `scrapeReadMs` at most. Late, or failed, it shows what the last read that
   * succeeded found (none: nothing), and shop_metrics_read_age_seconds how old that is: /metrics
   * neither waits behind a queue for a connection (a rush of orders, the embedded database's one
   * connection) nor fails with the database (the process's own figures are what an operator
   * needs then). A late read goes on; scrapes meanwhile wait for the same one rather than queue
   * another.
   */
  private scrapeRead<T>(name: string, read: () => Promise<T>): () => Promise<T | undefined> {
    let last: { value: T; at: number } | undefined;
    let pending: Promise<void> | undefined;
    let scrape: Promise<{ value: T | undefined; ageSeconds: number }> | undefined;
    const thisScrape = () =>
      (scrape ??= (async () => {
        pending ??= read()
          .then((value) => void (last = { value, at: Date.now() }))
          .finally(() => (pending = undefined));
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.scrapeReadMs)));
        try {
          const ended = pending.then(
            () => true,
            () => false,
          );
          const fresh = await Promise.race([ended, late]);
          const ageSeconds = fresh ? 0 : last ? (Date.now() - last.at) / 1000 : -1;
          return { value: last?.value, ageSeconds };
        } finally {
          clearTimeout(timer);
          scrape = undefined;
        }
      })());
    this.readAges.set(name, async () => (await thisScrape()).ageSeconds);
    return async () => (await thisScrape()).value;
  }

  onExpired(orders: number): void {
    this.expired.inc(orders);
  }

  onExpiryLeadership(leading: boolean): void {
    this.expiryLeader.set(leading ? 1 : 0);
  }

  onCommand(name: string, outcome: "ok" | "rejected" | "error", seconds: number, attempts: number): void {
    this.commandSeconds.observe({ command: name, outcome }, seconds);
    if (attempts > 1) this.commandAttempts.inc({ command: name }, attempts - 1);
  }

  onShed(): void {
    this.shed.inc();
  }

  onBatch(projection: string, events: number, seconds: number): void {
    this.batchSeconds.observe({ projection }, seconds);
    this.projectedEvents.inc({ projection }, events);
  }

  onRead(target: string): void {
    this.reads.inc({ target });
  }

  onCatalogCache(kind: CatalogCacheKind, outcome: CatalogCacheOutcome): void {
    this.catalogCache.inc({ kind, result: outcome });
  }

  onUntrustedDocument(outcome: "accepted" | "refused"): void {
    this.untrusted.inc({ outcome });
  }

  onRelayed(events: number): void {
    this.relayed.inc(events);
  }

  onRelayLag(events: number, seconds: number): void {
    this.relayLagEvents.set(events);
    this.relayLagSeconds.set(seconds);
  }

  onRelayLeadership(leading: boolean): void {
    this.relayLeader.set(leading ? 1 : 0);
    if (!leading) this.onRelayLag(0, 0);
  }

  onLeadership(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }
}
