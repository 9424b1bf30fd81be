// lz4 batches interoperate with the Java client in both directions: the Java
// consumer reads what a Sluice producer compressed, and a kafkajs consumer with
// Sluice's codecs reads what the Java producer compressed. The Java side is
// test/java/Lz4Interop.java, run against the Kafka jars of the local stack.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { kafkaJars } from "../../../scripts/stack.mjs";
import { createProducer } from "../src/index.js";
import { brokers, kafkaClient, readAll, TestEvent, topicNamer } from "./helpers.js";

const kafka = kafkaClient();
const topicName = topicNamer(kafka);
const javaSource = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "java",
  "Lz4Interop.java",
);

function java(mode: "produce" | "consume", topic: string, count: number): Promise<string> {
  const classpath = `${kafkaJars()}/*`;
  return new Promise((resolve, reject) => {
    const child = spawn(
      "java",
      ["-cp", classpath, javaSource, mode, brokers.join(","), topic, String(count)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err = (err + d).slice(-4000);
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`java ${mode} exited ${code}: ${err}`)),
    );
  });
}

describe("lz4 interoperability with the Java client", () => {
  it("the Java consumer reads every record of lz4 batches a Sluice producer wrote", async () => {
    const topic = topicName("lz4_to_java");
    const schema = { ...TestEvent, id: 1 };
    await using producer = createProducer({ brokers, topic, schema, compression: "lz4" });
    await producer.ensureTopic({ partitions: 3 });
    const count = 3000;
    // long, repetitive values: batches span several lz4 blocks of the frame
    await Promise.all(
      Array.from({ length: count }, (_, seq) =>
        producer.send({
          user_id: `u${seq % 101}`,
          seq,
          ts: 1_700_000_000_000 + seq,
          pad: "ab".repeat(400),
        }),
      ),
    );
    const lines = (await java("consume", topic, count)).trim().split("\n");
    expect(lines).toHaveLength(count);
    const seqs = lines.map((l) => TestEvent.decode(l).seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i));
  }, 120_000);

  it("Sluice's codecs decode every record of lz4 batches the Java producer wrote", async () => {
    const topic = topicName("lz4_from_java");
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const count = 3000;
    await java("produce", topic, count);
    const records = await readAll(kafka, topic, count, { settleMs: 500 });
    const values = records.map((r) => r.value).sort();
    expect(values).toEqual(Array.from({ length: count }, (_, i) => `java-${i}`).sort());
  }, 120_000);
});
