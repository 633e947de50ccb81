import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The storefront (src/storefront): built into dist/storefront by `npm install` (postinstall)
// and served by the API at GET /. Everything it loads is in that folder: no CDN, no web fonts.
export default defineConfig({
  root: "src/storefront",
  plugins: [react()],
  build: {
    outDir: "../../dist/storefront",
    emptyOutDir: true,
    assetsInlineLimit: 0, // no data: URLs (the page's CSP allows files from the server only)
    reportCompressedSize: true,
    // The storefront, and the GraphQL IDE the API serves at GET /graphql to a browser.
    rollupOptions: { input: { storefront: "src/storefront/index.html", graphiql: "src/storefront/graphiql.html" } },
  },
});
