import type { IncomingMessage } from "node:http";

/** The limits on graphql-ws sockets (README, "Configuration"); 0 for a count means no limit. */
export interface SocketLimits {
  /** Active subscriptions on one socket (MAX_SUBSCRIPTIONS_PER_SOCKET). */
  subscriptionsPerSocket: number;
  /** Open sockets of one signed-in actor on this instance (MAX_SOCKETS_PER_ACTOR). */
  socketsPerActor: number;
  /** Open sockets from one client address on this instance (MAX_SOCKETS_PER_IP). */
  socketsPerIp: number;
  /** The largest graphql-ws message taken (WS_MAX_MESSAGE_BYTES); a larger one closes the socket with 1009. */
  messageBytes: number;
  /** How long a socket may stay open without connection_init (WS_CONNECTION_INIT_TIMEOUT_MS); then 4408. */
  connectionInitTimeoutMs: number;
  /** Proxies in front of this instance that append to X-Forwarded-For (TRUST_PROXY_HOPS); 0: the peer's address. */
  trustProxyHops: number;
}

/**
 * Open sockets counted by key (an address, an actor), each key up to `max`. Keys at zero are
 * forgotten, so memory follows the open sockets.
 */
export class SocketCounts {
  private readonly counts = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts one more socket for `key`, unless it has `max` already: then false, and nothing counted. */
  open(key: string): boolean {
    const count = this.counts.get(key) ?? 0;
    if (this.max > 0 && count >= this.max) return false;
    this.counts.set(key, count + 1);
    return true;
  }

  close(key: string): void {
    const count = (this.counts.get(key) ?? 0) - 1;
    if (count > 0) this.counts.set(key, count);
    else this.counts.delete(key);
  }
}

/**
 * The client's address: the peer's, or behind `hops` trusted proxies, the address the farthest
 * of them saw (X-Forwarded-For is appended to by each proxy; what a client wrote itself is
 * further left, and not believed).
 */
export function clientAddress(request: IncomingMessage, hops: number): string {
  const peer = request.socket.remoteAddress ?? "unknown";
  if (hops <= 0) return peer;
  const header = request.headers["x-forwarded-for"];
  const forwarded = (Array.isArray(header) ? header.join(",") : (header ?? ""))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return forwarded[forwarded.length - hops] ?? forwarded[0] ?? peer;
}
