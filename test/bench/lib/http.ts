import http from "node:http";

export interface GraphQLResult<T = unknown> {
  status: number;
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/**
 * A lean GraphQL-over-HTTP client for load generation: node:http with keep-alive sockets
 * (cheaper per request than fetch, so the load generator is not what is measured).
 */
export class HttpGraphQL {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(baseUrl: string, maxSockets: number) {
    this.url = new URL("/graphql", baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  post<T = unknown>(body: string, bearer?: string): Promise<GraphQLResult<T>> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      };
      if (bearer) headers.authorization = `Bearer ${bearer}`;
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname,
          method: "POST",
          agent: this.agent,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            try {
              resolve({ status: res.statusCode ?? 0, ...(JSON.parse(text) as object) });
            } catch {
              resolve({ status: res.statusCode ?? 0, errors: [{ message: text.slice(0, 500) }] });
            }
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  /** A request that must succeed; throws with the errors otherwise. */
  async ok<T>(body: string, bearer?: string): Promise<T> {
    const res = await this.post<T>(body, bearer);
    if (res.status !== 200 || res.errors?.length || !res.data)
      throw new Error(`GraphQL request failed (${res.status}): ${JSON.stringify(res.errors)}`);
    return res.data;
  }

  close(): void {
    this.agent.destroy();
  }
}

export async function getText(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

/** Prometheus text → { 'name{labels}': value }. */
export async function scrapeMetrics(baseUrl: string): Promise<Map<string, number>> {
  const { text } = await getText(`${baseUrl}/metrics`);
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

export interface ServerSideStats {
  /** Mean time of the command inside the server (dispatch → commit), retries included. */
  commandMeanMs: number | undefined;
  commandRetries: number;
  /** Per projection: batches applied, events, mean events per batch, mean batch time. */
  projector: Record<string, { batches: number; events: number; eventsPerBatch: number; meanBatchMs: number }>;
}

export function serverSideDelta(
  before: Map<string, number>,
  after: Map<string, number>,
  command: string,
): ServerSideStats {
  const d = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const count = d(`shop_command_duration_seconds_count{command="${command}",outcome="ok"}`);
  const sum = d(`shop_command_duration_seconds_sum{command="${command}",outcome="ok"}`);
  const projector: ServerSideStats["projector"] = {};
  for (const name of ["catalog", "orders"]) {
    const batches = d(`shop_projection_batch_duration_seconds_count{projection="${name}"}`);
    const seconds = d(`shop_projection_batch_duration_seconds_sum{projection="${name}"}`);
    const events = d(`shop_projection_events_total{projection="${name}"}`);
    projector[name] = {
      batches,
      events,
      eventsPerBatch: batches ? Math.round((events / batches) * 10) / 10 : 0,
      meanBatchMs: batches ? Math.round((seconds / batches) * 1000 * 100) / 100 : 0,
    };
  }
  return {
    commandMeanMs: count ? Math.round((sum / count) * 1000 * 100) / 100 : undefined,
    commandRetries: d(`shop_command_retries_total{command="${command}"}`),
    projector,
  };
}
