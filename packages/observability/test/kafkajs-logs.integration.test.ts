import { createLogger, kafkaLogCreator } from "@sluice/observability";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { captureLines } from "./helpers.js";

const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);
const unique = (p: string) =>
  `${p}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe("kafkajs logs through kafkaLogCreator (real broker)", () => {
  it("a consumer joining a group logs into pino as JSON with component and namespace", async () => {
    const out = captureLines();
    const logger = createLogger({ level: "debug", destination: out.destination, name: "it" });
    const kafka = new Kafka({
      clientId: unique("obs-logs"),
      brokers,
      logLevel: logLevel.INFO,
      logCreator: kafkaLogCreator(logger),
    });
    const topic = unique("obs_logs");
    const admin = kafka.admin();
    await admin.connect();
    cleanups.push(async () => {
      await admin.deleteTopics({ topics: [topic] });
      await admin.disconnect();
    });
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    const groupId = unique("obs_group");
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    cleanups.push(async () => {
      await admin.deleteGroups([groupId]).catch(() => {});
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const joined = new Promise<void>((resolve) =>
      consumer.on(consumer.events.GROUP_JOIN, () => resolve()),
    );
    await consumer.run({ eachMessage: async () => {} });
    await joined;
    await consumer.disconnect();

    const fromKafkajs = out.lines.filter((l) => l.component === "kafkajs");
    expect(fromKafkajs.length).toBeGreaterThan(0);
    const join = fromKafkajs.find((l) => l.msg === "Consumer has joined the group");
    expect(join).toMatchObject({ level: "info", name: "it", namespace: "ConsumerGroup", groupId });
    expect(typeof join?.time).toBe("string");
    expect(join).not.toHaveProperty("timestamp");
  });

  it("SASL settings in real kafkajs log output are redacted", async () => {
    const out = captureLines();
    const logger = createLogger({ level: "debug", destination: out.destination });
    const sasl = {
      mechanism: "plain" as const,
      username: "svc-sluice-user",
      password: "s3cr3t-SASL-pw-123",
    };
    const kafka = new Kafka({
      clientId: unique("obs-sasl"),
      brokers,
      sasl,
      connectionTimeout: 2_000,
      authenticationTimeout: 2_000,
      retry: { retries: 0 },
      logLevel: logLevel.DEBUG,
      logCreator: kafkaLogCreator(logger),
    });
    // What applications typically do: log the client settings through kafkajs' own logger.
    kafka.logger().info("kafka client settings", {
      brokers,
      sasl,
      ssl: { key: "-----BEGIN KEY-----zz", rejectUnauthorized: true },
    });
    // A real SASL attempt against the loopback PLAINTEXT listener fails; kafkajs logs it.
    const admin = kafka.admin();
    await expect(admin.connect()).rejects.toThrow();
    await admin.disconnect().catch(() => {});

    const text = out.raw.join("");
    expect(text).not.toContain("s3cr3t-SASL-pw-123");
    expect(text).not.toContain("svc-sluice-user");
    expect(text).not.toContain("BEGIN KEY");
    const settings = out.lines.find((l) => l.msg === "kafka client settings");
    expect(settings).toMatchObject({
      component: "kafkajs",
      level: "info",
      sasl: { mechanism: "plain", username: "[redacted]", password: "[redacted]" },
      ssl: { rejectUnauthorized: true, key: "[redacted]" },
    });
    // kafkajs itself logged the failed connection/authentication as an error
    const errors = out.lines.filter((l) => l.component === "kafkajs" && l.level === "error");
    expect(errors.length).toBeGreaterThan(0);
    // and debug lines about the connection, proving the DEBUG mapping carries real kafkajs output
    expect(out.lines.some((l) => l.component === "kafkajs" && l.level === "debug")).toBe(true);
    // protocol fields that only look like secrets survive: ApiVersions lists numeric `apiKey`s
    expect(text).toMatch(/"apiKey":18\b/);
  });
});
