import type { GraphQLResolveInfo } from "graphql";
import { Arg, Ctx, ID, Info, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import type { OrderStatus } from "../../events";
import { AppError } from "../../shared/errors";
import { ORDERS_PROJECTION } from "../../projection/names";
import { orderCursor, type OrderRow } from "../../query/orders.queries";
import { decodeRowPosition, encodeRowPosition } from "../../query/rowPosition";
import { resumed } from "../../realtime/resume";
import { cancelOrder } from "../../write/orders/commands/cancelOrder";
import { payOrder } from "../../write/orders/commands/payOrder";
import { placeOrder } from "../../write/orders/commands/placeOrder";
import { shipOrder } from "../../write/orders/commands/shipOrder";
import type { Command } from "../../write/command";
import { assertId, commandBus, requireAdmin, requireUser, type GraphQLContext, type User } from "../context";
import { readBack } from "../readYourWrites";
import { selectsField, toConnection } from "../types/connection.type";
import {
  CancelOrderInput,
  Order,
  OrderConnection,
  OrderIdInput,
  OrderPayload,
  OrderStatusEnum,
  PlaceOrderInput,
} from "../types/order.type";

const canSee = (user: User, order: OrderRow) => user.role === "admin" || order.customerId === user.id;

async function dispatchOrderCommand<I>(ctx: GraphQLContext, command: Command<I, { orderId: string }>, input: I) {
  const outcome = await commandBus(ctx).dispatch(command, input, ctx.actor, { correlationId: ctx.correlationId });
  const { position, row } = await readBack(ctx, outcome, ORDERS_PROJECTION, () =>
    ctx.services.orders.byId(outcome.result.orderId),
  );
  return { position, order: row };
}

@Resolver(() => Order)
export class OrdersResolver {
  @Query(() => Order, { nullable: true, description: "The order's customer or an admin; null for anyone else." })
  async order(@Ctx() ctx: GraphQLContext, @Arg("id", () => ID) id: string): Promise<OrderRow | null> {
    const user = requireUser(ctx);
    const order = await ctx.services.reads.for(ctx.actor).orders.byId(assertId(id, "id"));
    return order && canSee(user, order) ? order : null;
  }

  @Query(() => OrderConnection, { description: "The signed-in customer's orders, newest first." })
  async myOrders(
    @Ctx() ctx: GraphQLContext,
    @Arg("first", () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Info() info: GraphQLResolveInfo,
  ) {
    const user = requireUser(ctx);
    const page = await ctx.services.reads.for(ctx.actor).orders.list({ customerId: user.id }, first, after, {
      count: selectsField(info, "totalCount"),
    });
    return toConnection(page, orderCursor);
  }

  @Query(() => OrderConnection, { description: "Admin. All orders, newest first." })
  async orders(
    @Ctx() ctx: GraphQLContext,
    @Arg("status", () => OrderStatusEnum, { nullable: true }) status: OrderStatus | null,
    @Arg("first", () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Info() info: GraphQLResolveInfo,
  ) {
    requireAdmin(ctx);
    const page = await ctx.services.reads
      .for(ctx.actor)
      .orders.list({ status }, first, after, { count: selectsField(info, "totalCount") });
    return toConnection(page, orderCursor);
  }

  @Mutation(() => OrderPayload, {
    description:
      "Customer. Reserves stock; idempotent per idempotencyKey (required here, optional on the other mutations).",
  })
  placeOrder(@Ctx() ctx: GraphQLContext, @Arg("input", () => PlaceOrderInput) input: PlaceOrderInput) {
    const lines = input.lines.map((l) => ({ productId: l.productId.toLowerCase(), quantity: l.quantity }));
    return dispatchOrderCommand(ctx, placeOrder, { idempotencyKey: input.idempotencyKey, lines });
  }

  @Mutation(() => OrderPayload, {
    description: "The order's customer or an admin; PLACED or PAID orders; releases the stock.",
  })
  cancelOrder(@Ctx() ctx: GraphQLContext, @Arg("input", () => CancelOrderInput) input: CancelOrderInput) {
    return dispatchOrderCommand(ctx, cancelOrder, {
      orderId: input.orderId.toLowerCase(),
      idempotencyKey: input.idempotencyKey,
    });
  }

  @Mutation(() => OrderPayload, { description: "Admin. PLACED → PAID." })
  payOrder(@Ctx() ctx: GraphQLContext, @Arg("input", () => OrderIdInput) input: OrderIdInput) {
    return dispatchOrderCommand(ctx, payOrder, {
      orderId: input.orderId.toLowerCase(),
      idempotencyKey: input.idempotencyKey,
    });
  }

  @Mutation(() => OrderPayload, { description: "Admin. PAID → SHIPPED." })
  shipOrder(@Ctx() ctx: GraphQLContext, @Arg("input", () => OrderIdInput) input: OrderIdInput) {
    return dispatchOrderCommand(ctx, shipOrder, {
      orderId: input.orderId.toLowerCase(),
      idempotencyKey: input.idempotencyKey,
    });
  }

  @Subscription(() => Order, {
    description: "The order's customer or an admin. Every change of the order, read from the order table.",
    subscribe: async ({
      args,
      context,
    }: {
      args: { orderId: string; after?: string | null };
      context: GraphQLContext;
    }) => {
      const user = requireUser(context);
      const orderId = assertId(args.orderId, "orderId");
      const after = args.after == null ? undefined : decodeRowPosition(args.after);
      // Live first, then the row: a change committed in between is in one or the other.
      const live = context.services.feed.orders.subscribe([orderId], (order) => canSee(user, order));
      return resumed(live, async () => {
        const existing = await context.services.orders.byId(orderId);
        if (existing && !canSee(user, existing)) throw new AppError("NOT_FOUND", `order ${orderId} not found`);
        const changed = existing && after && BigInt(existing.position) > BigInt(encodeRowPosition(after));
        return changed ? [existing] : [];
      });
    },
  })
  orderUpdated(
    @Root() order: OrderRow,
    @Arg("orderId", () => ID) _orderId: string,
    @Arg("after", () => String, {
      nullable: true,
      description:
        "A position of this order seen before: first its current row if it changed after it, then live changes.",
    })
    _after: string | null,
  ): OrderRow {
    return order;
  }
}
