import { defineSchema } from "../src/index.js";

export const userEventSchema = {
  $id: "https://sluice.dev/schemas/user-event.json",
  type: "object",
  properties: {
    user_id: { type: "string", minLength: 1 },
    event_type: { type: "string", enum: ["page_view", "click", "purchase"] },
    page: { type: "string" },
    ts: { type: "integer", minimum: 0 },
    at: { type: "string", format: "date-time" },
    props: { type: "object", additionalProperties: { type: ["string", "number", "boolean"] } },
  },
  required: ["user_id", "event_type", "ts"],
  additionalProperties: false,
} as const;

export const UserEvent = defineSchema({ subject: "user-event", schema: userEventSchema });

export const validEvent = {
  user_id: "u-1",
  event_type: "click",
  page: "/home",
  ts: 1_700_000_000_000,
  props: { a: 1, b: "x" },
} as const;
