import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { STOREFRONT_DIR } from "../../src/http/storefront";
import { token } from "./client";
import type { Role } from "../../src/shared/auth";

// Debian's Chromium through playwright-core, for the browser tests. `.ci/run` installs the
// chromium package when it is missing; no browser is ever downloaded.

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ROOT = resolve(import.meta.dirname, "../..");

/** Chromium, headless; builds the storefront first if this checkout has not (npm install does). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH`);
  if (!existsSync(resolve(STOREFRONT_DIR, "index.html")))
    execFileSync(process.execPath, [resolve(ROOT, "node_modules/vite/bin/vite.js"), "build", "--logLevel", "warn"], {
      cwd: ROOT,
      stdio: "inherit",
    });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A browser context signed in as a customer (its token in localStorage, as the sign-in leaves
 * it). Every request off this machine is refused and recorded in `offMachine`.
 */
export async function customerContext(
  browser: Browser,
  customerId: string,
  role: Role = "customer",
): Promise<{ context: BrowserContext; offMachine: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  await context.addInitScript(
    (jwt) =>
      (globalThis as unknown as { localStorage: { setItem(k: string, v: string): void } }).localStorage.setItem(
        "shop.token",
        jwt,
      ),
    token(role, customerId),
  );
  const offMachine: string[] = [];
  await context.route(
    (url) => url.hostname !== "127.0.0.1" && url.hostname !== "localhost",
    (route) => {
      offMachine.push(route.request().url());
      return route.abort();
    },
  );
  return { context, offMachine };
}
