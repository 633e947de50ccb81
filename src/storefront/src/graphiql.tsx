import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "graphiql/style.css";
import "./graphiql.css";
import { loadSession } from "./session";

// A GraphQL IDE for the API, served by the API itself at GET /graphql (for a browser), built with
// the storefront: nothing loads from a CDN. Queries and mutations over HTTP, subscriptions over
// graphql-ws; the storefront's sign-in, if any, fills the Authorization header.
const session = loadSession();
const authorization = session ? { authorization: `Bearer ${session.token}` } : undefined;
const fetcher = createGraphiQLFetcher({
  url: "/graphql",
  // On every request, the schema's introspection too (an admin's documents run under TRUSTED_DOCUMENTS=only).
  headers: authorization,
  subscriptionUrl: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
  wsConnectionParams: authorization ?? {},
});

createRoot(document.getElementById("graphiql")!).render(
  <StrictMode>
    <GraphiQL
      fetcher={fetcher}
      defaultHeaders={authorization ? JSON.stringify(authorization, null, 2) : undefined}
      defaultQuery={
        "# The catalog, as anyone sees it.\nquery {\n  products(first: 5) {\n    edges { node { sku name priceCents stockLevel available } }\n    totalCount\n  }\n}\n"
      }
    />
  </StrictMode>,
);
