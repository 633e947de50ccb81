// Request bodies in, JSON answers out: what the server's routes share (server.ts, operator.ts).
import type { IncomingMessage, ServerResponse } from "node:http";

export const MAX_BODY_BYTES = 1_000_000;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** An error as GraphQL answers it: `{ errors: [{ message, extensions: { code } }] }`. */
export const errorBody = (message: string, code: string, details: Record<string, unknown> = {}) => ({
  errors: [{ message, extensions: { ...details, code } }],
});

/** A request body refused before anything runs: too large, not UTF-8, not JSON. */
export class BodyError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Answers a BodyError. */
export function sendBodyError(res: ServerResponse, error: BodyError, headers: Record<string, string> = {}): void {
  sendJson(res, error.status, errorBody(error.message, error.code), {
    ...headers,
    // A body cut short (over the limit) leaves the rest unread: the connection cannot carry another request.
    ...(error.status === 413 ? { connection: "close" } : {}),
  });
}

/** Stateless between calls (no `stream` option), so one serves every request. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The whole body, with events rather than the stream's async iterator (a promise per chunk): a
 * request's body is one chunk nearly always, and this runs for every request.
 */
export function readBody(req: IncomingMessage): Promise<string> {
  const tooLarge = () => new BodyError(413, "BAD_REQUEST", `request body over ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      req.off("data", onData).off("end", onEnd);
      reject(tooLarge()); // answered with Connection: close, which ends the reading too
    };
    const onEnd = () => {
      try {
        resolve(utf8.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
      } catch {
        reject(new BodyError(400, "BAD_REQUEST", "request body is not valid UTF-8"));
      }
    };
    req.on("data", onData).on("end", onEnd).once("error", reject);
  });
}
