import type { AnyProjection } from "../projection";
import { catalogProjection } from "./catalog.projection";
import { ordersProjection } from "./orders.projection";

/** Every projection the projector runs. Add a new one here. */
export const allProjections: AnyProjection[] = [catalogProjection, ordersProjection];
