import type { CatalogEvent } from "./catalog.events";
import type { OrderEvent } from "./orders.events";

export * from "./catalog.events";
export * from "./orders.events";

/**
 * Every event of the log: the contract between the command side, the projections and, later,
 * the consumers of the event stream. A projection names the types it handles from this union.
 */
export type DomainEvent = CatalogEvent | OrderEvent;
export type EventType = DomainEvent["type"];
