// Wrong credentials on a PRIVATE broker that requires SASL (SCRAM-SHA-512)
// over TLS: a send fails fast with a coded error naming Kafka, never the
// password, instead of waiting out deliveryTimeoutMs.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import kafkajs from "kafkajs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type PrivateKafka, startPrivateKafka } from "../../../scripts/stack.mjs";
import { createProducer, ProducerError } from "../src/index.js";
import { TestEvent } from "./helpers.js";

const { Kafka, logLevel } = kafkajs;
const dir = mkdtempSync(path.join(tmpdir(), "sluice-producer-auth-"));
const port = 31_000 + Math.floor(Math.random() * 200) * 4;
let broker: PrivateKafka | undefined;

beforeAll(async () => {
  broker = await startPrivateKafka({ port, dir, secure: true });
}, 180_000);

afterAll(async () => {
  await broker?.stop({ signal: "SIGKILL" }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

it("fails a send fast with PRODUCER_SEND_FAILED when Kafka refuses the credentials", async () => {
  const wrong = "wrong-producer-secret-31";
  const kafka = new Kafka({
    brokers: broker!.brokers,
    ssl: { ca: [readFileSync(broker!.caFile!)] },
    sasl: { mechanism: "scram-sha-512", username: broker!.sasl!.username, password: wrong },
    logLevel: logLevel.NOTHING,
  });
  const producer = createProducer({ kafka, topic: "auth_test", schema: TestEvent, key: "user_id" });
  const t0 = Date.now();
  const err = await producer.send({ user_id: "u1", seq: 0, ts: Date.now() }).catch((e) => e);
  const elapsed = Date.now() - t0;
  await producer.close().catch(() => undefined);
  expect(err).toBeInstanceOf(ProducerError);
  expect(err.code).toBe("PRODUCER_SEND_FAILED");
  expect(err.message).toMatch(/^Kafka refused the producer: SASL .*authentication failed/);
  // deliveryTimeoutMs is 2 minutes: an authentication failure must not wait for it.
  expect(elapsed).toBeLessThan(30_000);
  const text = [err.message, err.stack, err.cause?.message, err.cause?.stack].join("\n");
  expect(text).not.toContain(wrong);
  expect(text).not.toContain(broker!.sasl!.password);
});
