export { SluiceError, type SluiceErrorOptions } from "@sluice/schema";
export {
  type ChangelogMessage,
  type ChangelogMutation,
  type ChangelogWriter,
  changelogTopicName,
  encodeChangelog,
} from "./changelog.js";
export {
  type ChangelogProducer,
  type CreateChangelogTopicOptions,
  createChangelogTopic,
  createKafkaChangelogWriter,
  type KafkaChangelogWriterOptions,
} from "./kafka-changelog.js";
export { type RestoreOptions, type RestoreResult, restore } from "./restore.js";
export { StateError, type StateErrorCode } from "./state-error.js";
export {
  type CheckpointMetadata,
  type CheckpointOptions,
  type OpenedFrom,
  openStateStore,
  PartitionState,
  StateStore,
  type StateStoreOptions,
  type StateStoreStats,
  type StateStoreStatus,
  type WindowEntry,
} from "./state-store.js";
export { jsonCodec, type ValueCodec, v8Codec } from "./value-codec.js";
