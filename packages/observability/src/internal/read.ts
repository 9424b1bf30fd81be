/** Thrown by the readers below when a channel message has the wrong shape. */
export class MalformedMessage extends Error {}

type Msg = Record<string, unknown>;

/** The message as an object, or throws {@link MalformedMessage}. */
export function asObject(message: unknown): Msg {
  if (typeof message !== "object" || message === null) throw new MalformedMessage("not an object");
  return message as Msg;
}

/** A finite, non-negative number field. */
export function count(msg: Msg, field: string): number {
  const v = msg[field];
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new MalformedMessage(`${field} is not a non-negative number`);
  }
  return v;
}

/** A finite number field (may be negative). */
export function finite(msg: Msg, field: string): number {
  const v = msg[field];
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new MalformedMessage(`${field} is not a finite number`);
  }
  return v;
}

/** An optional non-negative number field. */
export function optionalCount(msg: Msg, field: string): number | undefined {
  return msg[field] === undefined ? undefined : count(msg, field);
}

/** A list of partition numbers. */
export function partitions(msg: Msg, field: string): number[] {
  const v = msg[field];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((p) => Number.isInteger(p) && p >= 0)) {
    throw new MalformedMessage(`${field} is not a list of partitions`);
  }
  return v as number[];
}

/** Whether a message reports a failure (`error` present and not null/false). */
export function failed(msg: Msg): boolean {
  return msg.error !== undefined && msg.error !== null && msg.error !== false;
}
