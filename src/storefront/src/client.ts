import { createClient as createWsClient } from "graphql-ws";
import { Client, fetchExchange, makeOperation, mapExchange, subscriptionExchange } from "urql";

/**
 * Every document is sent as the id codegen gave it (the server's manifest of trusted documents,
 * TRUSTED_DOCUMENTS), in Apollo's persisted-query extension, never as text: the page works
 * where only trusted documents run, and its requests are smaller.
 */
const byDocumentId = mapExchange({
  onOperation(operation) {
    const id = (operation.query as { __meta__?: { hash?: string } }).__meta__?.hash;
    if (!id?.startsWith("sha256:")) return operation;
    const persistedQuery = { version: 1 as const, sha256Hash: id.slice("sha256:".length) };
    return makeOperation(
      operation.kind,
      { ...operation, extensions: { ...operation.extensions, persistedQuery } },
      operation.context,
    );
  },
});

/**
 * The API client: queries and mutations over HTTP, subscriptions over graphql-ws on the same
 * path, the token on both. No cache: the page keeps what it shows, and live changes replace
 * rows by id. The socket stays open and reconnects by itself for as long as the page is open;
 * `onReconnect` runs after each reconnection, so the page can refetch what it may have missed.
 */
export function apiClient(token: string | undefined, onReconnect: () => void): { client: Client; close(): void } {
  let connectedBefore = false;
  const ws = createWsClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    connectionParams: () => (token ? { authorization: `Bearer ${token}` } : {}),
    // Connected for as long as the page is open, even with nothing subscribed: the reconnection
    // after a server restart is what tells the page to refetch (a query that failed meanwhile too).
    lazy: false,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: async (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** retries, 3000))),
    on: {
      connected: () => {
        if (connectedBefore) onReconnect();
        connectedBefore = true;
      },
    },
  });
  const client = new Client({
    url: "/graphql",
    requestPolicy: "network-only",
    preferGetMethod: false, // POST: Apollo's CSRF prevention refuses a GET without a preflight header
    fetchOptions: (): RequestInit => ({ headers: token ? { authorization: `Bearer ${token}` } : {} }),
    exchanges: [
      byDocumentId,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink) }),
        }),
      }),
    ],
  });
  return { client, close: () => void ws.dispose() };
}
