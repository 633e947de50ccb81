// Prints a JWT for local use, signed with the same JWT_SECRET the server reads (src/config.ts):
//   npm run token -- --role admin --sub ops
//   curl -H "authorization: Bearer $(npm run -s token -- --role admin)" ...
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../src/config";
import { signToken } from "../src/http/auth";
import type { Role } from "../src/shared/auth";

const USAGE = `usage: npm run token -- [--role customer|admin] [--sub <id>] [--expires <seconds>]
  --role     customer (default) or admin
  --sub      the token's subject: the customer or admin id
             (default "demo-customer" for a customer, "ops" for an admin)
  --expires  lifetime in seconds (default 86400)
The token is signed with JWT_SECRET (the same default as the server's when unset).`;

const DEFAULT_SUB: Record<Role, string> = { customer: "demo-customer", admin: "ops" };

function usage(problem?: string): never {
  if (problem) console.error(`token: ${problem}`);
  console.error(USAGE);
  process.exit(2);
}

let values: { role?: string; sub?: string; expires?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      role: { type: "string" },
      sub: { type: "string" },
      expires: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  usage((error as Error).message);
}

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const role = values.role ?? "customer";
if (role !== "customer" && role !== "admin") usage(`--role must be customer or admin, got "${role}"`);

const sub = values.sub ?? DEFAULT_SUB[role];
// Same bounds the server accepts (src/http/auth.ts).
if (sub.length === 0 || sub.length > 200) usage("--sub must be 1 to 200 characters");

const expires = values.expires === undefined ? 86_400 : Number(values.expires);
if (!Number.isInteger(expires) || expires <= 0)
  usage(`--expires must be a positive whole number of seconds, got "${values.expires}"`);

let secret: string;
try {
  const configured = loadConfig().jwtSecret;
  if (!configured)
    throw new ConfigError("no JWT_SECRET to sign with (the server takes tokens from AUTH_JWKS_URL only)");
  secret = configured;
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`configuration error: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

console.log(signToken(secret, sub, role, expires));
