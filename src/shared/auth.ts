export type Role = "customer" | "admin";

/** Who is calling. `anonymous` may read the catalog and nothing else. */
export type Actor = { kind: "anonymous" } | { kind: "user"; id: string; role: Role };

export const anonymous: Actor = { kind: "anonymous" };

export function isAdmin(actor: Actor): boolean {
  return actor.kind === "user" && actor.role === "admin";
}

export function describeActor(actor: Actor): { id: string | null; role: Role | "anonymous" } {
  return actor.kind === "user" ? { id: actor.id, role: actor.role } : { id: null, role: "anonymous" };
}
