/** The kinds of user event the reference pipeline carries. */
export const EVENT_TYPES = ["page_view", "click", "add_to_cart", "purchase"] as const;

/** One of {@link EVENT_TYPES}. */
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * A user event as it travels on the `events` topic (JSON). Revenue is in
 * integer cents so sums are exact everywhere (Kafka, ClickHouse, Redis).
 */
export interface UserEvent {
  /** Unique, deterministic for a given generator seed. */
  event_id: string;
  /** The partition key. */
  user_id: string;
  type: EventType;
  page: string;
  /** Event time, epoch milliseconds. */
  ts: number;
  /** Only on `purchase`: the order value in cents. */
  revenue_cents?: number;
}

/** JSON Schema (draft 2020-12) of {@link UserEvent}. */
export const userEventJsonSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  title: "UserEvent",
  type: "object",
  additionalProperties: false,
  required: ["event_id", "user_id", "type", "page", "ts"],
  properties: {
    event_id: { type: "string", minLength: 1, maxLength: 64 },
    user_id: { type: "string", minLength: 1, maxLength: 64 },
    type: { type: "string", enum: ["page_view", "click", "add_to_cart", "purchase"] },
    page: { type: "string", minLength: 1, maxLength: 256 },
    ts: { type: "integer", minimum: 0 },
    revenue_cents: { type: "integer", minimum: 0 },
  },
} as const;
