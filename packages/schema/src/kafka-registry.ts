import type { Kafka } from "kafkajs";
import { type JsonSchemaObject, schemaFingerprint } from "./define-schema.js";
import { createKafkaLog } from "./internal/kafka-log.js";
import { createRegistry, RegistryState, validMode } from "./internal/registry-core.js";
import { SchemaError } from "./schema-error.js";
import type { RegistryOptions, SchemaRegistry } from "./schema-registry.js";

/**
 * Options of {@link createKafkaRegistry}.
 *
 * @since 0.1.0
 */
export interface KafkaRegistryOptions extends RegistryOptions {
  /** A kafkajs client. Either `kafka` or `brokers` is required. */
  kafka?: Kafka;
  /** Bootstrap brokers, when no `kafka` client is given. */
  brokers?: string | readonly string[];
  /** The compacted topic holding the schemas (created when missing). @defaultValue `'_sluice_schemas'` */
  topic?: string;
  /** Replication factor when the topic is created. @defaultValue 1 */
  replicationFactor?: number;
  /** How long to wait to read the topic to its end. @defaultValue 30000 */
  readTimeoutMs?: number;
}

/**
 * The id a schema gets in a Kafka-backed registry: the first 31 bits of the
 * SHA-256 of its canonical text (never 0).
 *
 * @param schema - a JSON Schema
 * @returns a positive 31-bit integer
 * @example
 * ```ts
 * kafkaSchemaId(UserEvent.jsonSchema) // same number in every process
 * ```
 * @since 0.1.0
 */
export function kafkaSchemaId(schema: JsonSchemaObject): number {
  return idFromFingerprint(schemaFingerprint(schema));
}

function idFromFingerprint(fingerprint: string): number {
  return Number.parseInt(fingerprint.slice(0, 8), 16) & 0x7fffffff || 1;
}

/**
 * A schema registry stored in a compacted, single-partition Kafka topic: every
 * process that reaches Kafka shares it, with no extra server. Ids are derived
 * from the schema's canonical hash, so processes registering the same schema
 * at the same time get the same id; versions follow the topic's order, so all
 * readers agree on them.
 *
 * @param options - Kafka client or brokers, topic, compatibility mode
 * @defaultValue topic `'_sluice_schemas'`, compatibility `'BACKWARD'`
 * @returns the registry (connecting in the background)
 * @throws SchemaError `SCHEMA_INVALID_DEFINITION` when neither `kafka` nor `brokers` is given, or the mode is invalid
 * @example
 * ```ts
 * await using registry = createKafkaRegistry({ brokers: ['127.0.0.1:9092'] });
 * const { id } = await registry.register(UserEvent);
 * ```
 * @since 0.1.0
 */
export function createKafkaRegistry(options: KafkaRegistryOptions): SchemaRegistry {
  const mode = validMode(options?.compatibility);
  const brokers =
    typeof options.brokers === "string"
      ? options.brokers.split(",").map((b) => b.trim())
      : options.brokers
        ? [...options.brokers]
        : undefined;
  if (!options.kafka && (!brokers || brokers.length === 0)) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      "createKafkaRegistry needs a kafkajs client (kafka) or brokers",
    );
  }
  const topic = options.topic ?? "_sluice_schemas";
  const readTimeoutMs = options.readTimeoutMs ?? 30_000;
  const state = new RegistryState();
  const log = createKafkaLog({
    kafka: options.kafka,
    brokers,
    topic,
    replicationFactor: options.replicationFactor ?? 1,
    onRecord(_key, value) {
      if (value === null) return;
      try {
        const r = JSON.parse(value);
        if (typeof r?.subject === "string" && Number.isInteger(r?.id) && r?.schema) {
          state.apply({
            subject: r.subject,
            id: r.id,
            fingerprint: schemaFingerprint(r.schema),
            schema: r.schema,
          });
        }
      } catch {
        // not a registry record: ignored
      }
    },
  });
  const opening = log.start();
  let openError: unknown;
  opening.catch((err) => {
    openError = err;
  });
  return createRegistry(
    {
      kind: "Kafka",
      state,
      async sync() {
        await opening.catch(() => undefined);
        if (openError) throw openError;
        await log.catchUp(readTimeoutMs);
      },
      async write(record) {
        await log.append(
          `${record.subject}/${record.fingerprint}`,
          JSON.stringify({ subject: record.subject, id: record.id, schema: record.schema }),
        );
      },
      allocateId: idFromFingerprint,
      async close() {
        await opening.catch(() => undefined);
        await log.close();
      },
    },
    mode,
    opening,
  );
}
