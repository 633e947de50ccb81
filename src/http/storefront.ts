import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import type { Role } from "../shared/auth";
import { signToken } from "./auth";
import { acceptedEncodings, contentHash, notModified, representationTag, type ContentEncoding } from "./encoding";

/** Where `npm install` (postinstall: vite build) puts the storefront. */
export const STOREFRONT_DIR = resolve(import.meta.dirname, "../../dist/storefront");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
};

/**
 * The page's own files only: no inline script or style element, no CDN, nothing from another
 * origin; the API on the same origin (HTTP and graphql-ws).
 */
const PAGE_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** The IDE's fonts and icons are data: URLs inside its stylesheet (still nothing from elsewhere). */
const IDE_HEADERS = {
  ...PAGE_HEADERS,
  "content-security-policy": PAGE_HEADERS["content-security-policy"].replace(
    "img-src 'self';",
    "img-src 'self' data:; font-src 'self' data:;",
  ),
};

/** The built files do not change while the server runs: each is read from disk once. */
const files = new Map<string, Promise<Buffer>>();
function builtFile(file: string): Promise<Buffer> {
  let body = files.get(file);
  if (!body) {
    files.set(file, (body = readFile(file)));
    body.catch(() => files.delete(file)); // not built (yet): look again next time
  }
  return body;
}

/**
 * The compressed forms the build writes beside each text file (vite.config.ts), and what each
 * built file has of them: read once, like the files, its absence remembered too.
 */
const SUFFIX = { br: ".br", gzip: ".gz" } as const;
const variants = new Map<string, Promise<Buffer | undefined>>();
function builtVariant(file: string): Promise<Buffer | undefined> {
  let body = variants.get(file);
  if (!body) variants.set(file, (body = readFile(file).catch(() => undefined)));
  return body;
}

/** Each built file's hash, for the ETags of its codings: computed once, like the file is read once. */
const hashes = new WeakMap<Buffer, string>();
function hashOf(body: Buffer): string {
  let hash = hashes.get(body);
  if (hash === undefined) hashes.set(body, (hash = contentHash(body)));
  return hash;
}

/** The body to send for a built file: its best compressed form the client accepts, or itself. */
async function encodedBody(
  file: string,
  body: Buffer,
  acceptEncoding: string | undefined,
): Promise<{ body: Buffer; encoding?: ContentEncoding }> {
  for (const encoding of acceptedEncodings(acceptEncoding)) {
    const encoded = await builtVariant(file + SUFFIX[encoding]);
    if (encoded) return { body: encoded, encoding };
  }
  return { body };
}

/**
 * GET /graphql from a browser (it accepts text/html): the GraphQL IDE built with the storefront
 * (graphiql.html), instead of Apollo's landing page, which loads from a CDN. False when it is
 * not built, or the request is not a browser's page load.
 */
export async function serveIde(dir: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (req.method !== "GET" || !(req.headers.accept ?? "").includes("text/html")) return false;
  if (new URL(req.url ?? "/", "http://localhost").searchParams.has("query")) return false; // a GET operation
  let body: Buffer;
  try {
    body = await builtFile(join(dir, "graphiql.html"));
  } catch {
    return false;
  }
  res.writeHead(200, { "content-type": TYPES[".html"]!, "cache-control": "no-cache", ...IDE_HEADERS });
  res.end(body);
  return true;
}

/**
 * GET / and the storefront's assets, from `dir`. Answers false for any other path (the caller
 * routes it). Assets have content-hashed names: cached for a year; the page itself is revalidated.
 * Each goes compressed as the build made it (brotli, else gzip) when the client accepts that.
 */
export async function serveStorefront(dir: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = (req.url ?? "/").split("?")[0]!;
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  if (path !== "/" && path !== "/index.html" && !path.startsWith("/assets/")) return false;
  let name: string;
  try {
    name = path === "/" ? "index.html" : decodeURIComponent(path);
  } catch {
    return false; // a malformed %-escape names no file (not found, not a server error)
  }
  const file = normalize(join(dir, name));
  if (!file.startsWith(dir + sep)) return false;
  let body: Buffer;
  try {
    body = await builtFile(file);
  } catch {
    if (path.startsWith("/assets/")) return false;
    res.writeHead(503, { "content-type": "text/plain; charset=utf-8", ...PAGE_HEADERS });
    res.end("The storefront is not built: run `npm run build:storefront` (npm install does it).\n");
    return true;
  }
  const sent = await encodedBody(file, body, req.headers["accept-encoding"]);
  const etag = representationTag(hashOf(body), sent.encoding);
  const headers = {
    vary: "accept-encoding",
    etag,
    "cache-control": path.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache",
    ...PAGE_HEADERS,
  };
  // The page is revalidated on every visit: unchanged, it costs a 304 and no body.
  if (notModified(req.headers["if-none-match"], etag)) {
    res.writeHead(304, headers).end();
    return true;
  }
  res.writeHead(200, {
    "content-type": TYPES[extname(file)] ?? "application/octet-stream",
    "content-length": sent.body.length,
    ...(sent.encoding ? { "content-encoding": sent.encoding } : {}),
    ...headers,
  });
  res.end(req.method === "HEAD" ? undefined : sent.body);
  return true;
}

/**
 * POST /dev/token {"role": "customer" | "admin", "sub"?: string}: a token signed with JWT_SECRET,
 * for the storefront's "sign in as a demo customer / as admin". Development only: the server
 * does not route it when NODE_ENV=production.
 */
export function devToken(secret: string, body: unknown): { token: string } | undefined {
  const { role, sub } = (body ?? {}) as { role?: unknown; sub?: unknown };
  if (role !== "customer" && role !== "admin") return undefined;
  const id = typeof sub === "string" && /^[\w.@-]{1,64}$/.test(sub) ? sub : `demo-${randomUUID().slice(0, 8)}`;
  return { token: signToken(secret, id, role as Role, 60 * 60 * 8) };
}
