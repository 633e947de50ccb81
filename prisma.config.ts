import { defineConfig } from "prisma/config";

// Prisma's CLI reads this file. The application applies prisma/migrations itself at start-up
// (src/db/migrate.ts), so a database URL is only needed for CLI commands that connect.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres" },
});
