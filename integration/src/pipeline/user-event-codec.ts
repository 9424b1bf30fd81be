import { defineSchema, type SchemaType } from "@sluice/schema";
import { userEventJsonSchema } from "../generator/user-event.js";

/** The codec of the `events` topic: JSON validated against the UserEvent schema. */
export const UserEventCodec = defineSchema({
  subject: "events-value",
  schema: userEventJsonSchema,
  maxEventBytes: 16 * 1024,
});

/** The event type inferred from the schema; equal to the generator's `UserEvent`. */
export type UserEventRecord = SchemaType<typeof UserEventCodec>;
