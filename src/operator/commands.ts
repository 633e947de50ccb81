// The operator's commands on the databases: `npm run verify`, `npm run projections -- rebuild`
// and `retry`. The CLIs run them on the databases they open. The embedded database (PGlite)
// belongs to one process, so while a server holds it, that server runs them for the CLIs
// (POST /operator/<command>, src/http/operator.ts), one at a time.
import { writeDatabase, type Databases } from "../db/open";
import type { Logger } from "../logger";
import { markRunning } from "../projection/checkpoints";
import { wakeProjectors, type EventSource } from "../projection/logSource";
import type { AnyProjection } from "../projection/projection";
import { allProjections } from "../projection/projections";
import { rebuildProjections } from "../projection/rebuild";
import { badInput, conflict } from "../shared/errors";
import { formatReport, verify } from "../verify/verify";

/** What a command found: its report, and whether all is well (the CLI's exit code 0). */
export interface OperatorOutcome {
  ok: boolean;
  report: string;
}

/**
 * Events per batch of a rebuild: fewer, bigger statements (the catalog updates every product it
 * touches once per batch); two batches are in memory at a time (one applied, the next read).
 * On the embedded database, whose one connection the server's requests share, each batch
 * transaction makes them wait: there batches of 1,000 kept a read's wait under 50 ms during a
 * rebuild of 40,000 events (10,000: up to a second), the rebuild as fast.
 */
const rebuildBatchSize = (dbs: Databases) => (dbs.read.kind === "embedded" ? 1_000 : 10_000);

/** The projection of that name; BAD_USER_INPUT names the known ones. */
export function projectionNamed(name: string): AnyProjection {
  const projection = allProjections.find((p) => p.name === name);
  if (!projection)
    throw badInput(`unknown projection "${name}"; known: ${allProjections.map((p) => p.name).join(", ")}`);
  return projection;
}

/** The projections named, each once; `--all` alone names all of them. */
export function projectionsNamed(names: readonly string[]): AnyProjection[] {
  if (names.length === 1 && names[0] === "--all") return allProjections;
  if (names.length === 0) throw badInput("name a projection, or --all");
  return [...new Set(names)].map(projectionNamed);
}

/** Recomputes the read side and checks the log against the write model (src/verify/verify.ts). Writes nothing. */
export async function verifyDatabases(dbs: Databases, waitMs: number): Promise<OperatorOutcome> {
  const result = await verify(writeDatabase(dbs), { waitMs }, dbs.read);
  return { ok: result.ok, report: formatReport(result) };
}

export interface RebuildSettings {
  /** PROJECTOR_BATCH_SIZE: a rebuild's batches are at least rebuildBatchSize. */
  batchSize: number;
  logger: Logger;
  /** Where the events come from: the write database's log unless this (the event stream on NATS). */
  stream?: EventSource;
  /**
   * Who rebuilds, as the projections query names it; default rebuild@host:pid. A server passes
   * its own: on the embedded database every session shares its one backend's application_name.
   */
  instanceId?: string;
}

/** Rebuilds the projections from position 0 into copies, then swaps them in (src/projection/rebuild.ts). */
export async function rebuild(
  dbs: Databases,
  projections: AnyProjection[],
  settings: RebuildSettings,
): Promise<OperatorOutcome> {
  const result = await rebuildProjections(dbs.read, projections, {
    batchSize: Math.max(settings.batchSize, rebuildBatchSize(dbs)),
    logger: settings.logger,
    instanceId: settings.instanceId,
    ...(settings.stream ? { source: settings.stream } : { log: writeDatabase(dbs) }),
  });
  const batches = result.perProjection.map((p) => `${p.name} ${p.batchSeconds.toFixed(2)} s`).join(", ");
  return {
    ok: true,
    report:
      `rebuilt ${projections.map((p) => p.name).join(", ")}: ${result.events} events in ${result.seconds.toFixed(2)} s ` +
      `(${Math.round(result.events / Math.max(result.seconds, 0.001))} events/s; in batch transactions, side by side: ${batches})`,
  };
}

/** Lets the projector resume a FAILED projection from its checkpoint, once its cause is fixed. */
export async function retry(dbs: Databases, projection: AnyProjection): Promise<OperatorOutcome> {
  const changed = await markRunning(dbs.read.sql, projection.name);
  // the projectors listen on the event log's database (those fed from the stream look on their next poll)
  if (dbs.write) await wakeProjectors(dbs.write.sql);
  return {
    ok: true,
    report: changed
      ? `${projection.name} will resume from its checkpoint`
      : `${projection.name} was not FAILED; nothing to do`,
  };
}

/**
 * The commands a server runs for the CLIs on the embedded database it holds: one at a time (on
 * the one backend, session locks are granted to every holder, so two rebuilds would not keep
 * each other out); another meanwhile is refused with CONFLICT.
 */
export class OperatorCommands {
  private running: string | undefined;

  constructor(
    private readonly dbs: Databases,
    private readonly settings: RebuildSettings,
  ) {}

  async verify(waitMs: number): Promise<OperatorOutcome> {
    return this.one("verify", () => verifyDatabases(this.dbs, waitMs));
  }

  async rebuild(names: readonly string[]): Promise<OperatorOutcome> {
    const projections = projectionsNamed(names);
    return this.one("rebuild", () => rebuild(this.dbs, projections, this.settings));
  }

  async retry(name: string): Promise<OperatorOutcome> {
    const projection = projectionNamed(name);
    return this.one("retry", () => retry(this.dbs, projection));
  }

  private async one(command: string, run: () => Promise<OperatorOutcome>): Promise<OperatorOutcome> {
    if (this.running) throw conflict(`${this.running} is running on this server; try again when it has ended`);
    this.running = command;
    try {
      return await run();
    } finally {
      this.running = undefined;
    }
  }
}
