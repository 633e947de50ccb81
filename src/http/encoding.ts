import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { brotliCompress, brotliCompressSync, constants, gzip, gzipSync } from "node:zlib";

/** The content codings we send, best first. */
export type ContentEncoding = "br" | "gzip";
const ENCODINGS: readonly ContentEncoding[] = ["br", "gzip"];

/**
 * Whether an Accept-Encoding header accepts a content coding (q > 0): listed, or covered by `*`
 * and not listed with q=0. RFC 9110 §12.5.3; no header: none but identity.
 */
export function acceptsEncoding(header: string | undefined, encoding: string): boolean {
  let wildcard: number | undefined;
  for (const part of (header ?? "").split(",")) {
    const [name = "", ...params] = part.split(";").map((p) => p.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (name === encoding) return q > 0;
    if (name === "*") wildcard = q;
  }
  return wildcard !== undefined && wildcard > 0;
}

/** The codings of `available` the header accepts, best first. */
export const acceptedEncodings = (
  header: string | undefined,
  available: readonly ContentEncoding[] = ENCODINGS,
): ContentEncoding[] => available.filter((encoding) => acceptsEncoding(header, encoding));

/** Appends a field to a response's Vary, keeping what is there (CORS varies on the origin). */
export function addVary(
  res: { getHeader(name: string): unknown; setHeader(name: string, value: string): unknown },
  field: string,
): void {
  const vary = res.getHeader("vary");
  res.setHeader("vary", vary ? `${String(vary)}, ${field}` : field);
}

/** A body's hash, as its ETags carry it (27 characters of base64url SHA-256: 160 bits). */
export const contentHash = (body: string | Buffer): string =>
  createHash("sha256").update(body).digest("base64url").slice(0, 27);

/**
 * The strong ETag of one coding of a body, from the hash of the body as it is: each coding is a
 * representation of its own, with a tag of its own (RFC 9110 §8.8.3).
 */
export const representationTag = (hash: string, encoding: ContentEncoding | undefined): string =>
  `"${hash}${encoding ? `-${encoding}` : ""}"`;

/**
 * Whether If-None-Match names this tag (or is `*`): a GET then gets 304 Not Modified. The
 * comparison is the weak one the header calls for: `W/"x"` (what a proxy that re-encodes makes of
 * our "x") names "x" too.
 */
export const notModified = (ifNoneMatch: string | undefined, etag: string): boolean =>
  ifNoneMatch !== undefined &&
  ifNoneMatch.split(",").some((listed) => {
    const tag = listed.trim();
    return tag === "*" || (tag.startsWith("W/") ? tag.slice(2) : tag) === etag;
  });

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);
/**
 * The fastest settings: an answer is compressed on its request's path. A page of 20 products
 * (7 KB of JSON) shrinks 3.3x either way; brotli 1 with a 64 KB window (its default, 4 MB, is
 * set up for nothing on answers this size) takes about 35 us of CPU measured alone, gzip 1 about
 * 70; in the server, with its heap, each adds 0.1-0.14 ms to such an answer (README).
 */
const BROTLI = (size: number) => ({
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 1,
    [constants.BROTLI_PARAM_LGWIN]: 16,
    [constants.BROTLI_PARAM_SIZE_HINT]: size,
  },
});
const GZIP = { level: 1 };
/**
 * Up to this, compressed at once (at most about 0.3 ms): a call on the thread pool costs about
 * 0.12 ms of CPU and 0.2 ms of latency by itself here. Beyond it, on the pool, so that a large
 * answer does not hold the event loop for milliseconds.
 */
const SYNC_UP_TO = 64 * 1024;

/** A response body compressed for the wire: at once when small, on the thread pool when large. */
export function compressBody(text: string, encoding: ContentEncoding): Buffer | Promise<Buffer> {
  const body = Buffer.from(text);
  if (body.length <= SYNC_UP_TO)
    return encoding === "br" ? brotliCompressSync(body, BROTLI(body.length)) : gzipSync(body, GZIP);
  return encoding === "br" ? brotliAsync(body, BROTLI(body.length)) : gzipAsync(body, GZIP);
}
