import react from "@vitejs/plugin-react";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { brotliCompress, constants, gzip } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);

/**
 * Each text file of the build, compressed once here, at the best settings (brotli 11, gzip 9:
 * too slow to do per request, free at build time), beside it as `.br` and `.gz`. The API serves
 * the one the browser accepts (src/http/storefront.ts); a form no smaller than the file is not
 * written.
 */
function precompress(): Plugin {
  return {
    name: "precompress",
    apply: "build",
    async writeBundle({ dir: outDir = "" }, bundle) {
      const files = Object.keys(bundle).filter((name) => /\.(html|js|css|svg|json)$/.test(name));
      await Promise.all(
        files.map(async (name) => {
          const path = join(outDir, name);
          const body = await readFile(path);
          const [br, gz] = await Promise.all([
            brotli(body, {
              params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
            }),
            gzipped(body, { level: 9 }),
          ]);
          if (br.length < body.length) await writeFile(`${path}.br`, br);
          if (gz.length < body.length) await writeFile(`${path}.gz`, gz);
        }),
      );
    },
  };
}

// The storefront (src/storefront): built into dist/storefront by `npm install` (postinstall)
// and served by the API at GET /. Everything it loads is in that folder: no CDN, no web fonts.
export default defineConfig({
  root: "src/storefront",
  plugins: [react(), precompress()],
  build: {
    outDir: "../../dist/storefront",
    emptyOutDir: true,
    assetsInlineLimit: 0, // no data: URLs (the page's CSP allows files from the server only)
    reportCompressedSize: true,
    // The IDE's bundle (GraphiQL and CodeMirror, 840 KB, 216 KB as brotli) is loaded only at GET /graphql.
    chunkSizeWarningLimit: 1000,
    // The storefront, and the GraphQL IDE the API serves at GET /graphql to a browser.
    rollupOptions: { input: { storefront: "src/storefront/index.html", graphiql: "src/storefront/graphiql.html" } },
  },
});
