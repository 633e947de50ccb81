// The server as `npm start` runs it: src/main.ts and the projector's worker thread bundled into
// dist/server with esbuild (the dependencies stay in node_modules), so that a start loads plain
// JavaScript instead of compiling TypeScript through tsx. Module paths resolved from
// import.meta (schema.graphql, the migrations, the storefront) are two folders below the root
// in both places. type-graphql takes object and input types' names from their classes, which the
// bundle keeps as written (esbuild renames a top-level name only when two modules' names
// collide), without tsx's name-keeping wrappers; test/e2e/built-server.e2e.test.ts compares the
// built server's schema with schema.graphql.
import { build } from "esbuild";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(import.meta.dirname, "..");
/** The built server, relative to a checkout's root. */
export const SERVER_FILE = "dist/server/main.mjs";
export const SERVER_ENTRY = resolve(ROOT, SERVER_FILE);

/**
 * Each file is replaced whole (written beside it, then renamed over it), and only when it
 * changed: instances started at once from one checkout (`npm start` builds first) never load a
 * file another one is writing.
 */
export async function buildServer(): Promise<void> {
  const { outputFiles } = await build({
    absWorkingDir: ROOT,
    entryPoints: ["src/main.ts", "src/projection/projector.worker.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    outdir: dirname(SERVER_FILE),
    entryNames: "[name]",
    outExtension: { ".js": ".mjs" },
    logLevel: "warning",
    write: false,
  });
  await Promise.all(
    outputFiles.map(async ({ path, contents }) => {
      const current = await readFile(path).catch(() => undefined);
      if (current?.equals(contents)) return;
      await mkdir(dirname(path), { recursive: true });
      const next = `${path}.${process.pid}.tmp`;
      await writeFile(next, contents);
      await rename(next, path);
    }),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildServer();
