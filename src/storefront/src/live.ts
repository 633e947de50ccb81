import { createContext, useContext, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { useQuery, useSubscription, type AnyVariables, type TypedDocumentNode, type UseQueryArgs } from "urql";
import {
  InventoryChangedDocument,
  OrderUpdatedDocument,
  type OrderFieldsFragment,
  type ProductFieldsFragment,
} from "../generated/graphql";

/** Rows by id, the newest state of each: a query's rows, replaced by what subscriptions push. */
function useRows<T extends { id: string; updatedAt: string }>(rows: T[] | undefined) {
  const [pushed, push] = useReducer((state: Map<string, T>, row: T) => {
    const seen = state.get(row.id);
    if (seen && seen.updatedAt > row.updatedAt) return state;
    return new Map(state).set(row.id, row);
  }, new Map<string, T>());
  const merged = useMemo(
    () =>
      (rows ?? []).map((row) => {
        const live = pushed.get(row.id);
        return live && live.updatedAt >= row.updatedAt ? live : row;
      }),
    [rows, pushed],
  );
  return { rows: merged, push };
}

/** The products shown, kept live through inventoryChanged. */
export function useLiveProducts(products: ProductFieldsFragment[] | undefined) {
  const { rows, push } = useRows(products);
  const productIds = useMemo(() => (products ?? []).map((p) => p.id), [products]);
  useSubscription(
    { query: InventoryChangedDocument, variables: { productIds }, pause: productIds.length === 0 },
    (_previous, data) => {
      push(data.inventoryChanged);
      return data;
    },
  );
  return rows;
}

/** One order kept live through orderUpdated (a subscription per order shown). */
export function useLiveOrder(order: OrderFieldsFragment): OrderFieldsFragment {
  const [live, setLive] = useState(order);
  useEffect(() => setLive((current) => (current.updatedAt > order.updatedAt ? current : order)), [order]);
  useSubscription({ query: OrderUpdatedDocument, variables: { orderId: order.id } }, (_previous, data) => {
    setLive((current) => (current.updatedAt > data.orderUpdated.updatedAt ? current : data.orderUpdated));
    return data;
  });
  return live;
}

/** Seconds until a moment, ticking every second (null without one). */
export function useCountdown(until: string | null | undefined): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!until) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [until]);
  return until ? Math.max(0, Math.ceil((new Date(until).getTime() - now) / 1000)) : null;
}

/** How many times the socket has reconnected (a server restart): what the page shows may be stale after each. */
export const Reconnections = createContext(0);

/** useQuery, fetched again after every reconnection (the changes made meanwhile were not pushed). */
export function useFreshQuery<Data, Variables extends AnyVariables>(
  args: UseQueryArgs<Variables, Data> & { query: TypedDocumentNode<Data, Variables> },
) {
  const generation = useContext(Reconnections);
  const result = useQuery(args);
  const [, reexecute] = result;
  const seen = useRef(generation);
  useEffect(() => {
    if (seen.current === generation) return;
    seen.current = generation;
    reexecute({ requestPolicy: "network-only" });
  }, [generation, reexecute]);
  return result;
}
