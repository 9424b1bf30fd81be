// The Confluent Schema Registry is a third-party server we cannot run here:
// this test runs a tiny in-process FAKE of the few REST endpoints the client
// uses (register, lookup, by id, latest, compatibility), with the documented
// request/response shapes and error codes.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkCompatibility,
  createConfluentRegistry,
  defineSchema,
  type JsonSchemaObject,
  SchemaError,
} from "../src/index.js";
import { rejection as error } from "./helpers.js";

interface Version {
  id: number;
  version: number;
  schema: string;
}
const subjects = new Map<string, Version[]>();
const ids = new Map<string, number>();
const requests: Array<{ method: string; url: string; contentType?: string; auth?: string }> = [];
let server: Server;
let url: string;

function body(req: IncomingMessage): Promise<any> {
  return new Promise((resolve) => {
    let text = "";
    req.on("data", (c) => {
      text += c;
    });
    req.on("end", () => resolve(text ? JSON.parse(text) : undefined));
  });
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    requests.push({
      method: req.method!,
      url: req.url!,
      contentType: req.headers["content-type"],
      auth: req.headers.authorization,
    });
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { "content-type": "application/vnd.schemaregistry.v1+json" });
      res.end(JSON.stringify(json));
    };
    const u = new URL(req.url!, "http://x");
    const parts = u.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const b = req.method === "POST" ? await body(req) : undefined;
    if (b && b.schemaType !== "JSON") return send(422, { error_code: 42201, message: "bad type" });
    // POST /subjects/:s/versions
    if (req.method === "POST" && parts[0] === "subjects" && parts[2] === "versions") {
      const versions = subjects.get(parts[1]!) ?? [];
      const same = versions.find((v) => v.schema === b.schema);
      if (same) return send(200, { id: same.id });
      const last = versions[versions.length - 1];
      if (last && !checkCompatibility(JSON.parse(last.schema), JSON.parse(b.schema)).compatible) {
        return send(409, { error_code: 409, message: "Schema being registered is incompatible" });
      }
      const id = ids.get(b.schema) ?? ids.size + 1;
      ids.set(b.schema, id);
      versions.push({ id, version: versions.length + 1, schema: b.schema });
      subjects.set(parts[1]!, versions);
      return send(200, { id });
    }
    // POST /subjects/:s (lookup)
    if (req.method === "POST" && parts[0] === "subjects" && parts.length === 2) {
      const v = subjects.get(parts[1]!)?.find((x) => x.schema === b.schema);
      if (!v) return send(404, { error_code: 40403, message: "Schema not found" });
      return send(200, { subject: parts[1], ...v, schemaType: "JSON" });
    }
    // GET /subjects/:s/versions/latest
    if (req.method === "GET" && parts[0] === "subjects" && parts[3] === "latest") {
      const versions = subjects.get(parts[1]!);
      if (!versions) return send(404, { error_code: 40401, message: "Subject not found" });
      return send(200, { subject: parts[1], ...versions[versions.length - 1], schemaType: "JSON" });
    }
    // GET /schemas/ids/:id and /schemas/ids/:id/versions
    if (req.method === "GET" && parts[0] === "schemas" && parts[1] === "ids") {
      const id = Number(parts[2]);
      const hits = [...subjects.entries()].flatMap(([s, vs]) =>
        vs
          .filter((v) => v.id === id)
          .map((v) => ({ subject: s, version: v.version, schema: v.schema })),
      );
      if (!hits.length) return send(404, { error_code: 40403, message: "Schema not found" });
      if (parts[3] === "versions")
        return send(
          200,
          hits.map(({ subject, version }) => ({ subject, version })),
        );
      return send(200, { schema: hits[0]!.schema, schemaType: "JSON" });
    }
    // POST /compatibility/subjects/:s/versions/latest?verbose=true
    if (req.method === "POST" && parts[0] === "compatibility") {
      const versions = subjects.get(parts[2]!);
      if (!versions) return send(404, { error_code: 40401, message: "Subject not found" });
      const r = checkCompatibility(
        JSON.parse(versions[versions.length - 1]!.schema),
        JSON.parse(b.schema),
      );
      return send(200, {
        is_compatible: r.compatible,
        messages: u.searchParams.get("verbose")
          ? r.changes.map((c) => `${c.path}: ${c.message}`)
          : [],
      });
    }
    if (parts[0] === "boom") return send(500, { error_code: 50001, message: "store error" });
    send(404, { error_code: 404, message: "no route" });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

const v1 = {
  type: "object",
  properties: { user_id: { type: "string" }, ts: { type: "integer" } },
  required: ["user_id", "ts"],
} as const satisfies JsonSchemaObject;
const v2 = {
  ...v1,
  properties: { ...v1.properties, page: { type: "string" } },
} as const satisfies JsonSchemaObject;
const broken = { type: "object", properties: { user_id: { type: "integer" } } } as const;

describe("createConfluentRegistry (against a fake Confluent REST server)", () => {
  it("registers with schemaType JSON, versions, looks up by id and latest", async () => {
    await using registry = createConfluentRegistry({
      url,
      auth: { username: "u", password: "p" },
    });
    const E = defineSchema({ subject: "user-event-value", schema: v1 });
    const r1 = await registry.register(E);
    expect(r1).toMatchObject({ id: 1, version: 1, subject: "user-event-value" });
    expect(E.id).toBe(1);
    expect(await registry.register(E)).toEqual(r1);
    const r2 = await registry.register({ subject: "user-event-value", jsonSchema: v2 });
    expect(r2).toMatchObject({ id: 2, version: 2 });
    expect(await registry.latest("user-event-value")).toMatchObject({
      id: 2,
      version: 2,
      schema: v2,
    });
    expect(await registry.getById(1)).toEqual({
      id: 1,
      subject: "user-event-value",
      version: 1,
      schema: v1,
    });
    const reg = requests.find((r) => r.method === "POST" && r.url.endsWith("/versions"))!;
    expect(reg.contentType).toBe("application/vnd.schemaregistry.v1+json");
    expect(reg.auth).toBe(`Basic ${Buffer.from("u:p").toString("base64")}`);
  });

  it("SCHEMA_INCOMPATIBLE with the server's list of changes; compatibility check", async () => {
    await using registry = createConfluentRegistry({ url });
    await registry.register({ subject: "c", jsonSchema: v1 });
    const e = await error(registry.register({ subject: "c", jsonSchema: broken }));
    expect(e.code).toBe("SCHEMA_INCOMPATIBLE");
    expect(e.changes.length).toBeGreaterThanOrEqual(2);
    expect(e.changes.map((c) => c.message).join(" ")).toContain("/properties/user_id/type");
    expect((await registry.checkCompatibility({ subject: "c", jsonSchema: v2 })).compatible).toBe(
      true,
    );
    expect(
      (await registry.checkCompatibility({ subject: "new-subject", jsonSchema: broken }))
        .compatible,
    ).toBe(true);
  });

  it("SCHEMA_NOT_FOUND, SCHEMA_REGISTRY_FAILED (HTTP 500, unreachable), SCHEMA_REGISTRY_CLOSED", async () => {
    const registry = createConfluentRegistry({ url });
    expect((await error(registry.getById(4242))).code).toBe("SCHEMA_NOT_FOUND");
    expect((await error(registry.latest("missing"))).code).toBe("SCHEMA_NOT_FOUND");
    const boom = createConfluentRegistry({ url: `${url}/boom` });
    const e500 = await error(boom.latest("x"));
    expect(e500.code).toBe("SCHEMA_REGISTRY_FAILED");
    expect(e500.retryable).toBe(true);
    const down = createConfluentRegistry({ url: "http://127.0.0.1:1", timeoutMs: 2000 });
    expect((await error(down.latest("x"))).code).toBe("SCHEMA_REGISTRY_FAILED");
    await registry.close();
    await registry.close();
    expect(registry.status).toBe("closed");
    expect((await error(registry.latest("x"))).code).toBe("SCHEMA_REGISTRY_CLOSED");
    expect(() => createConfluentRegistry({ url: "not a url" })).toThrow(SchemaError);
  });
});
