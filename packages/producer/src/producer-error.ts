import { SluiceError, type SluiceErrorOptions } from "@sluice/schema";

/**
 * Stable codes carried by {@link ProducerError}.
 *
 * | code | meaning | retryable |
 * |---|---|---|
 * | `PRODUCER_INVALID_OPTIONS` | an option of `createProducer` / `ensureTopic` is invalid | no |
 * | `PRODUCER_CLOSED` | the producer was used after `close()` | no |
 * | `PRODUCER_TOPIC_NOT_FOUND` | the topic does not exist (auto-creation is off) | yes |
 * | `PRODUCER_TOPIC_MISMATCH` | an existing topic has another partition count than asked | no |
 * | `PRODUCER_PARTITIONER_FAILED` | the partitioner threw or returned no valid partition | no |
 * | `PRODUCER_SEND_FAILED` | the broker refused the batch with a non-retriable error | no |
 * | `PRODUCER_DELIVERY_TIMEOUT` | not acknowledged within `deliveryTimeoutMs` | yes |
 * | `PRODUCER_ENCODER_UNAVAILABLE` | `recordEncoder: 'sluice'` asked, but the installed kafkajs is not the version Sluice's encoder is pinned to | no |
 * | `PRODUCER_FENCING_UNAVAILABLE` | an offset commit fenced by group generation, or a stable offset fetch, was asked of a producer or broker that cannot make it (internal, for @sluice/windowing) | no |
 * | `PRODUCER_OFFSETS_UNSTABLE` | a stable offset fetch still found a pending transactional offset commit at its timeout (internal, for @sluice/windowing) | yes |
 *
 * Invalid events are rejected with the `SchemaError` of `@sluice/schema`
 * (`SCHEMA_INVALID_EVENT`, `SCHEMA_EVENT_TOO_LARGE`).
 *
 * @since 0.1.0
 */
export type ProducerErrorCode =
  | "PRODUCER_INVALID_OPTIONS"
  | "PRODUCER_CLOSED"
  | "PRODUCER_TOPIC_NOT_FOUND"
  | "PRODUCER_TOPIC_MISMATCH"
  | "PRODUCER_PARTITIONER_FAILED"
  | "PRODUCER_SEND_FAILED"
  | "PRODUCER_DELIVERY_TIMEOUT"
  | "PRODUCER_ENCODER_UNAVAILABLE"
  | "PRODUCER_FENCING_UNAVAILABLE"
  | "PRODUCER_OFFSETS_UNSTABLE";

/**
 * The error class of `@sluice/producer`.
 *
 * @example
 * ```ts
 * try { await producer.send(event) } catch (err) {
 *   if (ProducerError.isInstance(err) && err.retryable) retryLater(event);
 * }
 * ```
 * @since 0.1.0
 */
export class ProducerError extends SluiceError {
  declare readonly code: ProducerErrorCode;
  /** The topic concerned, when known. */
  readonly topic: string | undefined;

  /**
   * @param code - stable error code
   * @param message - what was wrong and what to do
   * @param options - cause, retryable flag and topic
   */
  constructor(
    code: ProducerErrorCode,
    message: string,
    options: SluiceErrorOptions & { topic?: string } = {},
  ) {
    super(code, message, options);
    this.name = "ProducerError";
    this.topic = options.topic;
  }

  /**
   * True for a `ProducerError` from any installed copy of `@sluice/producer`.
   *
   * @param value - anything caught
   * @returns whether `value` is a Sluice error named `ProducerError`
   */
  static override isInstance(value: unknown): value is ProducerError {
    return SluiceError.isInstance(value) && value.name === "ProducerError";
  }
}
