import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The Node 22 release the peer comparison runs on (both servers), pinned so runs compare. */
export const NODE22_VERSION = "22.23.5";

/**
 * A Node 22 executable for the bench's peer comparison (PostGraphile v5 needs Node ≥ 22; the
 * project, its tests and CI stay on the machine's Node 20). In order: BENCH_NODE22 if set, this
 * node if it already is 22 or later, else the registry's `node-<platform>-<arch>` package of
 * NODE22_VERSION, installed once into a cache folder outside the project
 * (~/.cache/shop-bench/node-<version>): never into node_modules, where its `node` would land in
 * node_modules/.bin and take over `npm test` for everyone.
 */
export async function node22(
  log: (message: string) => void = () => undefined,
): Promise<{ path: string; version: string }> {
  const given = process.env.BENCH_NODE22;
  if (given) return checked(given);
  if (Number(process.versions.node.split(".")[0]) >= 22) return { path: process.execPath, version: process.version };
  const pkg = `node-${process.platform}-${process.arch}`;
  const cacheRoot = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache");
  const prefix = path.join(cacheRoot, "shop-bench", `node-${NODE22_VERSION}`);
  const binary = path.join(prefix, "node_modules", pkg, "bin", "node");
  if (!existsSync(binary)) {
    log(`installing ${pkg}@${NODE22_VERSION} from the npm registry into ${prefix}`);
    await run(
      "npm",
      [
        "install",
        "--prefix",
        prefix,
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        `${pkg}@${NODE22_VERSION}`,
      ],
      { timeout: 600_000 },
    );
  }
  return checked(binary);
}

async function checked(binary: string): Promise<{ path: string; version: string }> {
  const version = (await run(binary, ["--version"])).stdout.trim();
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  if (!(major >= 22)) throw new Error(`${binary} is ${version}, not Node 22 or later`);
  return { path: binary, version };
}
