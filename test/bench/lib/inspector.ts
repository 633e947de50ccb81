import WebSocket from "ws";

/**
 * The V8 inspector of a child process started with `--inspect=127.0.0.1:<port>` (in its
 * NODE_OPTIONS), over the DevTools protocol: the bench collects the child's garbage and reads
 * its heap, which RSS cannot tell (RSS moves with what the garbage collector has not returned
 * yet, and went negative per subscriber). Bench only: the server itself knows nothing of it.
 */
class Inspector {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(result: unknown): void; reject(error: Error): void }>();

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: WebSocket.RawData) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
      const call = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id!);
      if (message.error) call.reject(new Error(`inspector: ${message.error.message}`));
      else call.resolve(message.result);
    });
    socket.on("close", () => {
      for (const call of this.pending.values()) call.reject(new Error("inspector: connection closed"));
      this.pending.clear();
    });
  }

  static async connect(port: number): Promise<Inspector> {
    const response = await fetch(`http://127.0.0.1:${port}/json/list`);
    const [target] = (await response.json()) as { webSocketDebuggerUrl: string }[];
    if (!target) throw new Error(`inspector: no target on port ${port}`);
    const socket = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return new Inspector(socket);
  }

  private call<T>(method: string): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      this.socket.send(JSON.stringify({ id, method, params: {} }));
    });
  }

  /** The main thread's heap in use right after a full garbage collection (MB). */
  async heapAfterGcMb(): Promise<number> {
    await this.call("HeapProfiler.collectGarbage");
    const { usedSize } = await this.call<{ usedSize: number }>("Runtime.getHeapUsage");
    return usedSize / 2 ** 20;
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * The heap after a full GC of the child whose inspector listens on `port`, through a session
 * opened for this and closed after it: no session stays attached while the bench measures
 * latency (one that did made the subscriber fan-outs slower).
 */
export async function heapAfterGcMb(port: number): Promise<number> {
  const inspector = await Inspector.connect(port);
  try {
    return await inspector.heapAfterGcMb();
  } finally {
    inspector.close();
  }
}
