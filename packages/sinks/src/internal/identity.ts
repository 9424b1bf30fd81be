import { createHash } from "node:crypto";

/** Deterministic digest of a batch's record identities (order-sensitive). */
export function batchToken(ids: readonly string[]): string {
  const h = createHash("sha256");
  for (const id of ids) {
    h.update(id);
    h.update("\n");
  }
  return h.digest("hex").slice(0, 40);
}

/**
 * Default identity of a record: `id` when it is a string (window results),
 * else `<topic>:<partition>:<offset>` from the record's source position.
 */
export function defaultIdentity(record: unknown): string | undefined {
  if (typeof record !== "object" || record === null) return undefined;
  const r = record as Record<string, unknown>;
  if (typeof r.id === "string" && r.id.length > 0) return r.id;
  const offset = r.offset;
  if (
    typeof r.partition === "number" &&
    (typeof offset === "number" || typeof offset === "string")
  ) {
    return `${typeof r.topic === "string" ? r.topic : ""}:${r.partition}:${offset}`;
  }
  return undefined;
}
