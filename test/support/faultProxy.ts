import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/**
 * A TCP proxy between the API and Postgres that misbehaves on demand, as Shopify's toxiproxy
 * does: added latency, silence (bytes dropped, connections left open: the case that hangs
 * clients without timeouts), and resets of every open connection.
 */
export class FaultProxy {
  /** Added to every chunk, each way (ms). */
  latencyMs = 0;
  /** While true, nothing is forwarded either way, and the connections stay open. */
  silent = false;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly server: Server;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const forward = (from: Socket, to: Socket) =>
        from.on("data", (chunk) => {
          if (this.silent) return; // dropped
          if (this.latencyMs > 0) setTimeout(() => to.destroyed || to.write(chunk), this.latencyMs);
          else to.write(chunk);
        });
      forward(client, upstream);
      forward(upstream, client);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("close", end).on("error", end);
      upstream.on("close", end).on("error", end);
    });
  }

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy(target.host, target.port);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** How many connections go through it now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Resets every connection through it (TCP RST, both ways). */
  resetAll(): void {
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
