/** The roles a token can carry. */
export type Role = "customer" | "admin";

/** The service itself, acting on time (an order's payment deadline passing). Never from a token. */
export interface SystemActor {
  kind: "system";
  id: "system";
  role: "system";
}

/** Who is calling. `anonymous` may read the catalog and nothing else. */
export type Actor = { kind: "anonymous" } | { kind: "user"; id: string; role: Role } | SystemActor;

export const anonymous: Actor = { kind: "anonymous" };
export const systemActor: SystemActor = { kind: "system", id: "system", role: "system" };
