import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLocalRegistry, defineSchema, SchemaError } from "../src/index.js";
import { rejection as error } from "./helpers.js";

const dir = mkdtempSync(path.join(tmpdir(), "sluice-local-registry-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const v1 = {
  type: "object",
  properties: { user_id: { type: "string" }, ts: { type: "integer" } },
  required: ["user_id", "ts"],
} as const;
const v2 = {
  type: "object",
  properties: { user_id: { type: "string" }, ts: { type: "integer" }, page: { type: "string" } },
  required: ["user_id", "ts"],
} as const;
const broken = {
  type: "object",
  properties: { user_id: { type: "integer" } },
  required: ["user_id"],
} as const;

describe("createLocalRegistry", () => {
  it("registers, versions, looks up, and sets the codec's id", async () => {
    await using registry = createLocalRegistry();
    const E1 = defineSchema({ subject: "user-event", schema: v1 });
    const r1 = await registry.register(E1);
    expect(r1).toMatchObject({ id: 1, subject: "user-event", version: 1 });
    expect(E1.id).toBe(1);
    expect(await registry.register(E1)).toEqual(r1);
    const r2 = await registry.register({ subject: "user-event", jsonSchema: v2 });
    expect(r2).toMatchObject({ id: 2, version: 2 });
    expect((await registry.latest("user-event")).id).toBe(2);
    expect((await registry.getById(1)).schema).toEqual(v1);
    // same schema text under another subject: same id, version 1 there
    expect(await registry.register({ subject: "other", jsonSchema: v1 })).toMatchObject({
      id: 1,
      version: 1,
      subject: "other",
    });
  });

  it("SCHEMA_INCOMPATIBLE lists each breaking change; SCHEMA_NOT_FOUND; SCHEMA_INVALID_DEFINITION", async () => {
    await using registry = createLocalRegistry();
    await registry.register({ subject: "s", jsonSchema: v1 });
    const e = await error(registry.register({ subject: "s", jsonSchema: broken }));
    expect(e.code).toBe("SCHEMA_INCOMPATIBLE");
    expect(e.changes.map((c) => c.kind).sort()).toEqual([
      "required-property-removed",
      "type-narrowed",
    ]);
    expect(e.message).toContain("/properties/ts");
    const check = await registry.checkCompatibility({ subject: "s", jsonSchema: broken });
    expect(check.compatible).toBe(false);
    expect((await error(registry.getById(999))).code).toBe("SCHEMA_NOT_FOUND");
    expect((await error(registry.latest("nope"))).code).toBe("SCHEMA_NOT_FOUND");
    expect(
      (await error(registry.register({ subject: "s", jsonSchema: { type: "wat" } as never }))).code,
    ).toBe("SCHEMA_INVALID_DEFINITION");
    const none = createLocalRegistry({ compatibility: "NONE" });
    await none.register({ subject: "s", jsonSchema: v1 });
    expect((await none.register({ subject: "s", jsonSchema: broken })).version).toBe(2);
    await none.close();
  });

  it("persists to a directory and reloads", async () => {
    const a = createLocalRegistry({ dir });
    await a.register({ subject: "p", jsonSchema: v1 });
    await a.register({ subject: "p", jsonSchema: v2 });
    await a.close();
    await using b = createLocalRegistry({ dir });
    expect(await b.latest("p")).toMatchObject({ id: 2, version: 2 });
    expect((await b.register({ subject: "p", jsonSchema: v1 })).id).toBe(1);
  });

  it("SCHEMA_REGISTRY_CLOSED after close; close is idempotent", async () => {
    const registry = createLocalRegistry();
    await Promise.all([registry.close(), registry.close()]);
    expect(registry.status).toBe("closed");
    expect((await error(registry.latest("x"))).code).toBe("SCHEMA_REGISTRY_CLOSED");
  });
});
