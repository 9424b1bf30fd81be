import { expect } from "vitest";
import { SchemaError } from "../src/index.js";

/** The SchemaError a promise rejects with (fails the test when it resolves or rejects otherwise). */
export async function rejection(p: Promise<unknown>): Promise<SchemaError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(SchemaError.isInstance(e)).toBe(true);
  return e as SchemaError;
}
