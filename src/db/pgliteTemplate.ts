import { access, copyFile, mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { isAlive } from "../shared/process";

// A new embedded database starts as a copy of one that PGlite initialised once per installation
// (at `npm install`, and in the tests' global setup): PGlite's initdb takes seconds, a copy of
// its files a fraction of one. The template is keyed by PGlite's version, since its data files
// belong to the Postgres build inside it. Without a template (installed with --ignore-scripts,
// say) a new folder is initialised as before.

/** Module paths from import.meta are two folders below the root, in src/ and in dist/ alike. */
const ROOT = resolve(import.meta.dirname, "../..");

const isDatabase = (dir: string): Promise<boolean> =>
  access(join(dir, "PG_VERSION")).then(
    () => true,
    () => false,
  );

async function templateDir(): Promise<string> {
  const manifest = await readFile(resolve(ROOT, "node_modules/@electric-sql/pglite/package.json"), "utf8");
  const { version } = JSON.parse(manifest) as { version: string };
  return resolve(ROOT, "node_modules/.cache/shop-api", `pglite-${version}`);
}

/** Leftovers of a process that was killed while building beside `target` (`${target}.<pid>.tmp`). */
async function removeLeftovers(target: string): Promise<void> {
  const prefix = `${basename(target)}.`;
  const names = await readdir(dirname(target)).catch(() => []);
  for (const name of names) {
    const pid = name.startsWith(prefix) ? /^(\d+)\.tmp$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid && !isAlive(Number(pid))) await rm(join(dirname(target), name), { recursive: true, force: true });
  }
}

/**
 * Makes the folder `target` with `make`, beside it (`${target}.<pid>.tmp`), then renames it onto
 * `target`, which replaces only a missing or empty folder: `target` is whole or untouched. Throws
 * when either step fails.
 */
async function buildBeside(target: string, make: (dir: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  await removeLeftovers(target);
  const next = `${target}.${process.pid}.tmp`;
  try {
    await make(next);
    await rename(next, target);
  } finally {
    await rm(next, { recursive: true, force: true });
  }
}

/** A copy of the folder `from`, many files at a time (fs.cp copies one after another). */
async function copyFolder(from: string, to: string): Promise<void> {
  const entries = await readdir(from, { recursive: true, withFileTypes: true });
  const inCopy = (path: string) => join(to, relative(from, path));
  await mkdir(to, { recursive: true });
  for (const entry of entries)
    if (entry.isDirectory()) await mkdir(inCopy(join(entry.parentPath, entry.name)), { recursive: true });
  const files = entries.filter((entry) => !entry.isDirectory()).map((entry) => join(entry.parentPath, entry.name));
  let next = 0;
  const copier = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      await copyFile(file, inCopy(file));
    }
  };
  await Promise.all(Array.from({ length: 16 }, copier));
}

/** Makes the template if there is none yet; returns where it is. */
export async function prepareEmbeddedTemplate(): Promise<string> {
  const template = await templateDir();
  if (await isDatabase(template)) return template;
  await buildBeside(template, async (dir) => {
    const pg = await PGlite.create({ dataDir: dir });
    await pg.close();
  }).catch(async (error: unknown) => {
    // Another process's template got there first: use that one.
    if (!(await isDatabase(template))) throw error;
  });
  return template;
}

/**
 * Makes `location` a copy of the template when it is not a database yet and a template exists
 * (a folder is a whole database or untouched: see buildBeside). False when it was left to PGlite
 * to initialise.
 */
export async function copyEmbeddedTemplate(location: string): Promise<boolean> {
  if (await isDatabase(location)) return false;
  const template = await templateDir().catch(() => undefined);
  if (!template || !(await isDatabase(template))) return false;
  return buildBeside(location, (dir) => copyFolder(template, dir)).then(
    () => true,
    () => false, // not empty (another process's copy, or files of its own): PGlite decides
  );
}
