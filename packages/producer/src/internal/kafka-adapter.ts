// All Kafka I/O of @sluice/producer goes through this adapter, so a faster
// KafkaJS-compatible client can replace kafkajs here and nowhere else.
import kafkajs, {
  type Admin,
  type Kafka,
  type Message,
  type Producer,
  type RecordMetadata,
} from "kafkajs";
import { groupByPartition } from "./grouped-records.js";
import { createEncodingProducer } from "./kafkajs-fast-path.js";

const { Kafka: KafkaClass, logLevel } = kafkajs;

export interface OutgoingMessage {
  partition: number;
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, string>;
  timestamp: string;
}

export interface TopicBatch {
  topic: string;
  messages: OutgoingMessage[];
}

export interface PartitionAck {
  topic: string;
  partition: number;
  baseOffset: string;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

export interface AdapterOptions {
  kafka?: Kafka;
  brokers?: string[];
  clientId: string;
  acks: -1 | 1 | 0;
  idempotent: boolean;
  requestTimeoutMs: number;
  /** Who encodes record batches (see kafkajs-fast-path.ts). */
  recordEncoder: "auto" | "sluice" | "kafkajs";
}

export interface KafkaAdapter {
  /** Who encodes record batches: Sluice's encoder or kafkajs's. */
  readonly recordEncoder: "sluice" | "kafkajs";
  /** Why kafkajs encodes, when it does. */
  readonly recordEncoderReason: string | undefined;
  /** Produce requests encoded so far, by encoder. */
  readonly encodedRequests: { readonly sluice: number; readonly kafkajs: number };
  connect(): Promise<void>;
  /** Partition count of a topic, or undefined when it does not exist. */
  partitionCount(topic: string): Promise<number | undefined>;
  send(batches: TopicBatch[], compression: number): Promise<PartitionAck[]>;
  /** Creates the topic when missing; returns the partition count it has. */
  createTopic(spec: TopicSpec): Promise<{ created: boolean; partitions: number }>;
  disconnect(): Promise<void>;
}

export function createKafkaAdapter(options: AdapterOptions): KafkaAdapter {
  const kafka: Kafka =
    options.kafka ??
    new KafkaClass({
      clientId: options.clientId,
      brokers: options.brokers ?? [],
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  const made = createEncodingProducer(
    kafka,
    {
      idempotent: options.idempotent,
      maxInFlightRequests: options.idempotent ? 1 : undefined,
      allowAutoTopicCreation: false,
      // Sluice chooses every partition itself (murmur2 by default); kafkajs
      // only groups the messages by the partition they carry.
      createPartitioner: () => (args) => (args.message as { partition: number }).partition,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
    },
    options.recordEncoder,
    // one message per partition to kafkajs (see grouped-records.ts)
    true,
  );
  const producer: Producer = made.producer;
  let admin: Admin | undefined;
  let adminConnected: Promise<void> | undefined;
  const getAdmin = async (): Promise<Admin> => {
    if (!admin) {
      admin = kafka.admin({ retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 } });
    }
    if (!adminConnected) {
      adminConnected = admin.connect().catch((err) => {
        adminConnected = undefined;
        throw err;
      });
    }
    await adminConnected;
    return admin;
  };
  let connected: Promise<void> | undefined;

  const partitionCount = async (topic: string): Promise<number | undefined> => {
    const a = await getAdmin();
    try {
      const md = await a.fetchTopicMetadata({ topics: [topic] });
      return md.topics[0]?.partitions.length;
    } catch (err) {
      const e = err as { type?: string; name?: string };
      if (e.type === "UNKNOWN_TOPIC_OR_PARTITION") return undefined;
      throw err;
    }
  };

  return {
    recordEncoder: made.encoder,
    recordEncoderReason: made.reason,
    encodedRequests: made.counts,
    connect() {
      if (!connected) {
        connected = producer.connect().catch((err) => {
          connected = undefined;
          throw err;
        });
      }
      return connected;
    },
    partitionCount,
    async send(batches, compression) {
      const acks: RecordMetadata[] = await producer.sendBatch({
        acks: options.acks,
        timeout: options.requestTimeoutMs,
        compression,
        topicMessages: made.groupsRecords
          ? batches.map((b) => ({
              topic: b.topic,
              messages: groupByPartition(b.messages) as unknown as Message[],
            }))
          : batches,
      });
      return acks.map((m) => ({
        topic: m.topicName,
        partition: m.partition,
        baseOffset: m.baseOffset ?? "-1",
      }));
    },
    async createTopic(spec) {
      const a = await getAdmin();
      let created = false;
      try {
        created = await a.createTopics({
          waitForLeaders: true,
          topics: [
            {
              topic: spec.name,
              numPartitions: spec.partitions,
              replicationFactor: spec.replicationFactor,
              configEntries: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
            },
          ],
        });
      } catch (err) {
        const e = err as { type?: string; errors?: Array<{ type?: string }> };
        const exists =
          e.type === "TOPIC_ALREADY_EXISTS" ||
          (e.errors ?? []).some((x) => x.type === "TOPIC_ALREADY_EXISTS");
        // The topic was created, but kafkajs's wait for its leaders asked a
        // broker whose metadata did not have it yet (KRaft propagates it
        // shortly after; kafkajs retries only LEADER_NOT_AVAILABLE): wait below.
        const notYetVisible = e.type === "UNKNOWN_TOPIC_OR_PARTITION";
        if (!exists && !notYetVisible) throw err;
        if (notYetVisible) created = true;
      }
      const deadline = Date.now() + options.requestTimeoutMs;
      for (;;) {
        const a2 = await getAdmin();
        try {
          const md = await a2.fetchTopicMetadata({ topics: [spec.name] });
          const parts = md.topics[0]?.partitions ?? [];
          if (parts.length > 0 && parts.every((p) => p.leader >= 0)) {
            return { created, partitions: parts.length };
          }
        } catch (err) {
          const e = err as { type?: string };
          if (e.type !== "UNKNOWN_TOPIC_OR_PARTITION" && e.type !== "LEADER_NOT_AVAILABLE")
            throw err;
        }
        if (Date.now() > deadline) {
          return { created, partitions: (await partitionCount(spec.name)) ?? 0 };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async disconnect() {
      await Promise.allSettled([
        connected ? producer.disconnect() : undefined,
        adminConnected && admin ? admin.disconnect() : undefined,
      ]);
      connected = undefined;
      adminConnected = undefined;
    },
  };
}
