import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import kafkajs from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { createKafkaRegistry, defineSchema, kafkaSchemaId, SchemaError } from "../src/index.js";

const run = promisify(execFile);
const brokers = process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092";
const here = path.dirname(fileURLToPath(import.meta.url));
const topics: string[] = [];

function uniqueTopic(): string {
  const t = `_sluice_schemas_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  topics.push(t);
  return t;
}

afterAll(async () => {
  const admin = new kafkajs.Kafka({
    clientId: "schema-test-cleanup",
    brokers: brokers.split(","),
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
  await admin.disconnect();
});

const v1 = {
  type: "object",
  properties: { user_id: { type: "string" }, ts: { type: "integer" } },
  required: ["user_id", "ts"],
} as const;

describe("createKafkaRegistry on the real broker", () => {
  it("two processes registering the same schema at once get one id and one version", async () => {
    const topic = uniqueTopic();
    // create the topic up front so both children start from the same state
    const setup = createKafkaRegistry({ brokers, topic });
    await setup.checkCompatibility({ subject: "warmup", jsonSchema: v1 });
    const startAt = String(Date.now() + 8000);
    const child = path.join(here, "fixtures", "register-child.ts");
    const [a, b] = await Promise.all(
      [0, 1].map(() =>
        run(process.execPath, ["--import", "tsx", child, brokers, topic, startAt], {
          timeout: 90_000,
        }),
      ),
    );
    const ra = JSON.parse(a!.stdout.trim());
    const rb = JSON.parse(b!.stdout.trim());
    expect(ra.id).toBe(rb.id);
    expect(ra.id).toBe(kafkaSchemaId(v1));
    expect(ra.version).toBe(1);
    expect(rb.version).toBe(1);
    const latest = await setup.latest("concurrent-subject");
    expect(latest).toMatchObject({ id: ra.id, version: 1 });
    await setup.close();
  });

  it("registers, evolves compatibly, rejects an incompatible version with its changes, shares state", async () => {
    const topic = uniqueTopic();
    await using writer = createKafkaRegistry({ brokers, topic });
    const E1 = defineSchema({ subject: "user-event", schema: v1 });
    const r1 = await writer.register(E1);
    expect(r1).toMatchObject({ version: 1, subject: "user-event" });
    expect(E1.id).toBe(r1.id);
    const v2 = { ...v1, properties: { ...v1.properties, page: { type: "string" } } } as const;
    const r2 = await writer.register({ subject: "user-event", jsonSchema: v2 });
    expect(r2.version).toBe(2);

    const broken = { type: "object", properties: { user_id: { type: "integer" } } } as const;
    const err = await writer
      .register({ subject: "user-event", jsonSchema: broken })
      .catch((e: unknown) => e);
    expect(SchemaError.isInstance(err)).toBe(true);
    expect((err as SchemaError).code).toBe("SCHEMA_INCOMPATIBLE");
    expect((err as SchemaError).changes.map((c) => c.kind).sort()).toEqual([
      "required-property-removed",
      "type-narrowed",
    ]);

    // another instance reads the same registry from the topic
    await using reader = createKafkaRegistry({ brokers, topic });
    expect(await reader.latest("user-event")).toMatchObject({ id: r2.id, version: 2 });
    expect((await reader.getById(r1.id)).schema).toEqual(v1);
    const missing = await reader.getById(1).catch((e: unknown) => e);
    expect((missing as SchemaError).code).toBe("SCHEMA_NOT_FOUND");
  });
});
