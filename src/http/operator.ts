// POST /operator/verify | rebuild | retry: the operator commands a server runs for the CLIs on
// the embedded database it holds (src/operator/commands.ts), for an admin. The answer is the
// command's outcome, `{ ok, report }`, or an error as GraphQL gives it, with its code.
import type { IncomingMessage, ServerResponse } from "node:http";
import { requireAdmin } from "../graphql/context";
import type { Logger } from "../logger";
import type { OperatorCommands } from "../operator/commands";
import { AppError, badInput } from "../shared/errors";
import type { TokenVerifier } from "./auth";
import { isObject } from "./graphqlRequest";
import { BodyError, errorBody, readBody, sendBodyError, sendJson } from "./json";

/** The HTTP status of a command refused. */
const STATUS: Partial<Record<string, number>> = { UNAUTHENTICATED: 401, FORBIDDEN: 403, CONFLICT: 409 };

const secondsOf = (value: unknown): number => {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0)
    throw badInput("waitSeconds must be a number of seconds, at least 0");
  return value;
};
const nameOf = (value: unknown): string => {
  if (typeof value !== "string") throw badInput("projection must be a projection's name");
  return value;
};
const namesOf = (value: unknown): string[] => {
  if (!Array.isArray(value)) throw badInput("projections must be a list of projection names");
  return value.map(nameOf);
};

export async function handleOperator(
  req: IncomingMessage,
  res: ServerResponse,
  /** /operator/verify, /operator/rebuild or /operator/retry */
  path: string,
  deps: { operator: OperatorCommands | undefined; tokens: TokenVerifier; logger: Logger },
): Promise<void> {
  const { operator, tokens, logger } = deps;
  if (!operator) return sendJson(res, 404, { error: "not found" });
  if (req.method !== "POST") return sendJson(res, 405, { error: "POST a JSON body" }, { allow: "POST" });
  const command = path.slice("/operator/".length);
  try {
    requireAdmin({ actor: await tokens.actorOf(req.headers.authorization) });
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (error) {
      if (error instanceof BodyError) throw error;
      body = undefined;
    }
    if (!isObject(body)) throw badInput("the body must be a JSON object");
    const started = performance.now();
    const outcome =
      command === "verify"
        ? await operator.verify(secondsOf(body.waitSeconds ?? 10) * 1000)
        : command === "rebuild"
          ? await operator.rebuild(namesOf(body.projections))
          : await operator.retry(nameOf(body.projection));
    logger.info({ command, body, ok: outcome.ok, ms: Math.round(performance.now() - started) }, "operator command run");
    return sendJson(res, 200, outcome, { "cache-control": "no-store" });
  } catch (error) {
    if (error instanceof BodyError) return sendBodyError(res, error);
    if (!(error instanceof AppError)) throw error;
    return sendJson(res, STATUS[error.code] ?? 400, errorBody(error.message, error.code, error.details));
  }
}
