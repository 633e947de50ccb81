// Who the visitor is: a token kept in localStorage (signed in through the development-only
// POST /dev/token, or pasted), and its claims as the page needs them (role and sub). The token is
// only decoded here, never verified: the API verifies it on every request.
export interface Session {
  token: string;
  role: "customer" | "admin";
  sub: string;
}

const KEY = "shop.token";

export function decodeSession(token: string): Session | null {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as {
      role?: unknown;
      sub?: unknown;
    };
    if ((payload.role === "customer" || payload.role === "admin") && typeof payload.sub === "string")
      return { token, role: payload.role, sub: payload.sub };
  } catch {
    // not a JWT
  }
  return null;
}

export const loadSession = (): Session | null => {
  const token = localStorage.getItem(KEY);
  return token ? decodeSession(token) : null;
};

export function saveSession(session: Session | null): void {
  if (session) localStorage.setItem(KEY, session.token);
  else localStorage.removeItem(KEY);
}

/** A token from the development-only endpoint (refused when the server runs with NODE_ENV=production). */
export async function demoToken(role: "customer" | "admin"): Promise<Session> {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ role }),
  });
  if (!response.ok) throw new Error(`demo sign-in is not available here (HTTP ${response.status})`);
  const { token } = (await response.json()) as { token: string };
  const session = decodeSession(token);
  if (!session) throw new Error("the server sent a token the page cannot read");
  return session;
}
