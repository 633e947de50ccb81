export type Role = "customer" | "admin";

/** Who is calling. `anonymous` may read the catalog and nothing else. */
export type Actor = { kind: "anonymous" } | { kind: "user"; id: string; role: Role };

export const anonymous: Actor = { kind: "anonymous" };
