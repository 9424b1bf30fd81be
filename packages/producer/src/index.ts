export { SluiceError, type SluiceErrorOptions } from "@sluice/schema";
export { type Compression, registerCompressionCodecs } from "./compression.js";
export {
  createProducer,
  type EnsureTopicOptions,
  type Producer,
  type ProducerOptions,
  type ProducerStatus,
  type SendResult,
} from "./create-producer.js";
/**
 * Offset commits fenced by the consumer group's generation (KIP-447), for
 * @sluice/windowing. Not part of the supported API.
 *
 * @internal
 */
export {
  type GroupGeneration,
  recordGroupGenerations,
} from "./internal/group-generation.js";
/**
 * kafkajs private-cluster plumbing shared by Sluice's packages (the pinned
 * version, a one-time check of kafkajs's internals, hooks on one producer's
 * or consumer's own brokers). Not part of the supported API.
 *
 * @internal
 */
export {
  onPrivateCluster,
  PINNED_KAFKAJS_VERSION,
  type PrivateClusterResult,
  pinnedKafkajsCheck,
  symbolNamed,
} from "./internal/kafkajs-private-cluster.js";
/**
 * A consumer group's committed offsets read once no open transaction holds a
 * pending commit of them (OffsetFetch v7 with require_stable, KIP-447), for
 * @sluice/windowing. Not part of the supported API.
 *
 * @internal
 */
export {
  type FetchStableOffsetsOptions,
  fetchStableOffsets,
  type StableOffset,
  type StableOffsetsTopic,
} from "./internal/stable-offsets.js";
export {
  createKafkaProducer,
  type KafkaProducer,
  type KafkaProducerOptions,
  sendOffsetsFenced,
} from "./kafka-producer.js";
export { murmur2Partitioner, type Partitioner } from "./partitioner.js";
export { ProducerError, type ProducerErrorCode } from "./producer-error.js";
