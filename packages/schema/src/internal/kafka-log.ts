// All Kafka I/O of @sluice/schema: the registry's compacted topic.
import kafkajs, { type Admin, type Consumer, type Kafka, type Producer } from "kafkajs";

const { Kafka: KafkaClass, logLevel } = kafkajs;

export interface KafkaLogOptions {
  kafka?: Kafka;
  brokers?: string[];
  topic: string;
  replicationFactor: number;
  onRecord(key: string, value: string | null): void;
}

export interface KafkaLog {
  start(): Promise<void>;
  /** Resolves once every record written before the call has been passed to onRecord. */
  catchUp(timeoutMs: number): Promise<void>;
  append(key: string, value: string): Promise<void>;
  close(): Promise<void>;
}

export function createKafkaLog(options: KafkaLogOptions): KafkaLog {
  const kafka: Kafka =
    options.kafka ??
    new KafkaClass({
      clientId: "sluice-schema-registry",
      brokers: options.brokers ?? [],
      logLevel: logLevel.NOTHING,
    });
  const admin: Admin = kafka.admin();
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true });
  const groupId = `sluice-schema-registry-${process.pid}-${Date.now().toString(36)}-${Math.random()
    .toString(36)
    .slice(2, 8)}`;
  const consumer: Consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
  });
  let nextOffset = 0;

  return {
    async start() {
      await admin.connect();
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [
            {
              topic: options.topic,
              numPartitions: 1,
              replicationFactor: options.replicationFactor,
              configEntries: [{ name: "cleanup.policy", value: "compact" }],
            },
          ],
        });
      } catch (err) {
        const e = err as { type?: string; errors?: Array<{ type?: string }> };
        const exists =
          e.type === "TOPIC_ALREADY_EXISTS" ||
          (e.errors ?? []).some((x) => x.type === "TOPIC_ALREADY_EXISTS");
        if (!exists) throw err;
      }
      await producer.connect();
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          options.onRecord(
            message.key ? message.key.toString("utf8") : "",
            message.value ? message.value.toString("utf8") : null,
          );
          nextOffset = Number(message.offset) + 1;
        },
      });
    },
    async catchUp(timeoutMs) {
      const offsets = await admin.fetchTopicOffsets(options.topic);
      const high = Number(offsets.find((o) => o.partition === 0)?.high ?? "0");
      const deadline = Date.now() + timeoutMs;
      while (nextOffset < high) {
        if (Date.now() > deadline) {
          throw new Error(
            `timed out reading topic '${options.topic}' (at offset ${nextOffset} of ${high})`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async append(key, value) {
      await producer.send({ topic: options.topic, acks: -1, messages: [{ key, value }] });
    },
    async close() {
      await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    },
  };
}
