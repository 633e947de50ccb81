// Writes schema.graphql from the type-graphql resolvers; with --check, fails when it is stale.
import "reflect-metadata";
import { readFile, writeFile } from "node:fs/promises";
import { SCHEMA_FILE, schemaSdl } from "../src/graphql/schema";

const sdl = await schemaSdl();
if (process.argv.includes("--check")) {
  const committed = await readFile(SCHEMA_FILE, "utf8").catch(() => "");
  if (committed !== sdl) {
    console.error("schema.graphql is stale: run `npm run schema` and commit it");
    process.exit(1);
  }
  console.log("schema.graphql is up to date");
} else {
  await writeFile(SCHEMA_FILE, sdl);
  console.log(`wrote ${SCHEMA_FILE}`);
}
