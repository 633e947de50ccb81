import type { GraphQLResolveInfo } from "graphql";
import { Arg, Ctx, ID, Info, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import { AppError, badInput } from "../../shared/errors";
import { MAX_REPLAY, productCursor, type ProductRow } from "../../query/catalog.queries";
import { CATALOG_PROJECTION } from "../../projection/names";
import { decodeRowPosition } from "../../query/rowPosition";
import { resumed } from "../../realtime/resume";
import { createProduct } from "../../write/catalog/commands/createProduct";
import { restockProduct } from "../../write/catalog/commands/restockProduct";
import { assertId, commandBus, type GraphQLContext } from "../context";
import { readBack } from "../readYourWrites";
import { selectsField, toConnection } from "../types/connection.type";
import {
  CreateProductInput,
  Product,
  ProductConnection,
  ProductFilter,
  ProductPayload,
  RestockProductInput,
} from "../types/product.type";

@Resolver(() => Product)
export class CatalogResolver {
  @Query(() => ProductConnection)
  async products(
    @Ctx() ctx: GraphQLContext,
    @Arg("filter", () => ProductFilter, { nullable: true }) filter: ProductFilter | null,
    @Arg("first", () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Info() info: GraphQLResolveInfo,
  ) {
    // The count comes in the same statement as the page when totalCount is selected.
    const page = await ctx.services.reads.for(ctx.actor).catalog.list(filter ?? {}, first, after, {
      count: selectsField(info, "totalCount"),
    });
    return toConnection(page, productCursor);
  }

  @Query(() => Product, { nullable: true, description: "By id or by sku (exactly one)." })
  async product(
    @Ctx() ctx: GraphQLContext,
    @Arg("id", () => ID, { nullable: true }) id: string | null,
    @Arg("sku", () => String, { nullable: true }) sku: string | null,
  ): Promise<ProductRow | null> {
    if ((id == null) === (sku == null)) throw new AppError("BAD_USER_INPUT", "give exactly one of id and sku");
    const { catalog } = ctx.services.reads.for(ctx.actor);
    return id != null ? catalog.byId(assertId(id, "id")) : catalog.bySku(sku!);
  }

  @Mutation(() => ProductPayload, { description: "Admin." })
  async createProduct(@Ctx() ctx: GraphQLContext, @Arg("input", () => CreateProductInput) input: CreateProductInput) {
    const outcome = await commandBus(ctx).dispatch(createProduct, input, ctx.actor, {
      correlationId: ctx.correlationId,
    });
    const { position, row } = await readBack(ctx, outcome, CATALOG_PROJECTION, () =>
      ctx.services.catalog.byId(outcome.result.productId),
    );
    return { position, product: row };
  }

  @Mutation(() => ProductPayload, { description: "Admin. Adds quantity (> 0) to stock." })
  async restockProduct(
    @Ctx() ctx: GraphQLContext,
    @Arg("input", () => RestockProductInput) input: RestockProductInput,
  ) {
    const outcome = await commandBus(ctx).dispatch(
      restockProduct,
      { ...input, productId: input.productId.toLowerCase() },
      ctx.actor,
      { correlationId: ctx.correlationId },
    );
    const { position, row } = await readBack(ctx, outcome, CATALOG_PROJECTION, () =>
      ctx.services.catalog.byId(outcome.result.productId),
    );
    return { position, product: row };
  }

  @Subscription(() => Product, {
    description:
      "Anyone. Every change of the given products (all products when productIds is absent), read from the catalog table.",
    subscribe: async ({
      args,
      context,
    }: {
      args: { productIds?: string[] | null; after?: string | null };
      context: GraphQLContext;
      info: GraphQLResolveInfo;
    }) => {
      const ids = args.productIds?.map((id) => assertId(id, "productIds"));
      if (ids && ids.length > 1000)
        throw new AppError("BAD_USER_INPUT", "at most 1000 productIds", { field: "productIds" });
      const after = args.after == null ? undefined : decodeRowPosition(args.after);
      const live = context.services.feed.products.subscribe(ids);
      if (!after) return live;
      return resumed(live, async () => {
        const missed = await context.services.catalog.changedAfter(ids, after);
        if (missed.length > MAX_REPLAY)
          throw badInput(`more than ${MAX_REPLAY} products changed after that position: query them instead`, {
            field: "after",
          });
        return missed;
      });
    },
  })
  inventoryChanged(
    @Root() product: ProductRow,
    @Arg("productIds", () => [ID], { nullable: true }) _productIds: string[] | null,
    @Arg("after", () => String, {
      nullable: true,
      description: `A row's position seen before: first the current row of every matching product changed after it (at most ${MAX_REPLAY}, else BAD_USER_INPUT), then live changes.`,
    })
    _after: string | null,
  ): ProductRow {
    return product;
  }
}
