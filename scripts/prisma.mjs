#!/usr/bin/env node
// Runs the Prisma CLI. `prisma generate|validate|format` try to download the schema-engine
// binary first and fail offline, although generation never runs it; pointing
// PRISMA_SCHEMA_ENGINE_BINARY at any existing file skips the download. Set only when the
// user has not chosen an engine. Migrations are applied by src/db/migrate.ts, not by Prisma.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = fileURLToPath(import.meta.url);
const cli = require.resolve("prisma/build/index.js");
const result = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], { stdio: "inherit", env });
process.exit(result.status ?? 1);
