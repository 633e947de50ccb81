import { describe, expect, it } from "vitest";
import { checkKey } from "../../src/write/idempotency";
import {
  MAX_LINE_QUANTITY,
  MAX_ORDER_LINES,
  normalizeLines,
  placeOrder,
  type PlaceOrder,
  type State,
} from "../../src/write/orders/commands/placeOrder";
import { decided, decideSpec } from "../support/given";

const ORDER_ID = "00000000-0000-4000-8000-0000000000aa";
const NOW = new Date("2026-01-02T03:04:05.000Z");
const MUG = "00000000-0000-4000-8000-000000000001";
const TEA = "00000000-0000-4000-8000-000000000002";
const GONE = "00000000-0000-4000-8000-0000000000ff";

const catalog = (available: { mug?: number; tea?: number } = {}): State => ({
  orderId: ORDER_ID,
  customerId: "alice",
  products: new Map([
    [MUG, { sku: "MUG-1", name: "Mug", priceCents: 1250, available: available.mug ?? 10 }],
    [TEA, { sku: "TEA-1", name: "Tea", priceCents: 399, available: available.tea ?? 10 }],
  ]),
});
const order = (lines: PlaceOrder["lines"], idempotencyKey = "key-1"): PlaceOrder => ({ idempotencyKey, lines });
const placed = (
  lines: { productId: string; sku: string; name: string; quantity: number; unitPriceCents: number }[],
) => [
  {
    streamId: ORDER_ID,
    streamType: "order",
    streamVersion: 1,
    type: "OrderPlaced",
    data: {
      orderId: ORDER_ID,
      customerId: "alice",
      lines,
      totalCents: lines.reduce((s, l) => s + l.quantity * l.unitPriceCents, 0),
      itemCount: lines.reduce((s, l) => s + l.quantity, 0),
      placedAt: NOW.toISOString(),
      // ORDER_PAYMENT_TIMEOUT_SECONDS (900 in the test context) after it is placed
      expiresAt: new Date(NOW.getTime() + 900_000).toISOString(),
    },
  },
];

const given = decideSpec((state: State, cmd: PlaceOrder) => {
  // The key is checked by the command bus, for every command that takes one, before the command runs.
  checkKey(cmd.idempotencyKey);
  return decided(placeOrder, state, cmd, NOW);
});

describe("placing an order (decide)", () => {
  it("places the order priced from the catalog state, with the time and id it is given", () => {
    given(catalog())
      .when(order([{ productId: MUG, quantity: 2 }]))
      .then(placed([{ productId: MUG, sku: "MUG-1", name: "Mug", quantity: 2, unitPriceCents: 1250 }]));
  });

  it("merges lines naming the same product and lists them in product-id order", () => {
    given(catalog())
      .when(
        order([
          { productId: TEA, quantity: 1 },
          { productId: MUG, quantity: 2 },
          { productId: TEA, quantity: 3 },
        ]),
      )
      .then(
        placed([
          { productId: MUG, sku: "MUG-1", name: "Mug", quantity: 2, unitPriceCents: 1250 },
          { productId: TEA, sku: "TEA-1", name: "Tea", quantity: 4, unitPriceCents: 399 },
        ]),
      );
  });

  it("accepts exactly the available quantity", () => {
    given(catalog({ mug: 5 }))
      .when(order([{ productId: MUG, quantity: 5 }]))
      .then(placed([{ productId: MUG, sku: "MUG-1", name: "Mug", quantity: 5, unitPriceCents: 1250 }]));
  });

  it("rejects the 6th unit when 5 are available as OUT_OF_STOCK", () => {
    given(catalog({ mug: 5 }))
      .when(order([{ productId: MUG, quantity: 6 }]))
      .thenRejects("OUT_OF_STOCK", { productId: MUG, available: 5 });
  });

  it("counts merged duplicate lines against the stock together", () => {
    given(catalog({ mug: 5 }))
      .when(
        order([
          { productId: MUG, quantity: 3 },
          { productId: MUG, quantity: 3 },
        ]),
      )
      .thenRejects("OUT_OF_STOCK");
  });

  it("rejects a product the catalog does not know as NOT_FOUND", () => {
    given(catalog())
      .when(
        order([
          { productId: MUG, quantity: 1 },
          { productId: GONE, quantity: 1 },
        ]),
      )
      .thenRejects("NOT_FOUND", { productId: GONE });
  });

  it.each([
    ["zero quantity", [{ productId: MUG, quantity: 0 }]],
    ["a negative quantity", [{ productId: MUG, quantity: -1 }]],
    ["a fractional quantity", [{ productId: MUG, quantity: 1.5 }]],
    ["a quantity over the per-line maximum", [{ productId: MUG, quantity: MAX_LINE_QUANTITY + 1 }]],
    ["no lines", []],
    ["more lines than allowed", Array.from({ length: MAX_ORDER_LINES + 1 }, () => ({ productId: MUG, quantity: 1 }))],
  ])("rejects %s as BAD_USER_INPUT", (_what, lines) => {
    given(catalog()).when(order(lines)).thenRejects("BAD_USER_INPUT");
  });

  it.each([
    ["an empty", ""],
    ["a blank", "   "],
    ["a 201-character", "k".repeat(201)],
  ])("rejects %s idempotency key as BAD_USER_INPUT", (_what, key) => {
    given(catalog())
      .when(order([{ productId: MUG, quantity: 1 }], key))
      .thenRejects("BAD_USER_INPUT", { field: "idempotencyKey" });
  });
});

describe("normalizing order lines", () => {
  it("gives the same lines for the same order in any line order (the idempotency hash relies on it)", () => {
    const a = normalizeLines([
      { productId: TEA, quantity: 1 },
      { productId: MUG, quantity: 1 },
      { productId: TEA, quantity: 1 },
    ]);
    const b = normalizeLines([
      { productId: MUG, quantity: 1 },
      { productId: TEA, quantity: 2 },
    ]);
    expect(a).toEqual(b);
  });
});
