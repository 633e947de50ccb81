import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive } from "../../src/shared/process";

/**
 * Temporary folders named `<prefix><pid>-…` whose owning process is gone (a test run killed
 * before its clean-up): what a support module sweeps on its first use. Another run going on at
 * the same time keeps its folders.
 */
export function orphanedTempDirs(prefix: string): string[] {
  const pattern = new RegExp(`^${prefix}(\\d+)-`);
  return readdirSync(tmpdir())
    .filter((entry) => {
      const owner = Number(pattern.exec(entry)?.[1]);
      return owner > 0 && owner !== process.pid && !isAlive(owner);
    })
    .map((entry) => join(tmpdir(), entry));
}
