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
export {
  createKafkaProducer,
  type KafkaProducer,
  type KafkaProducerOptions,
} from "./kafka-producer.js";
export { murmur2Partitioner, type Partitioner } from "./partitioner.js";
export { ProducerError, type ProducerErrorCode } from "./producer-error.js";
