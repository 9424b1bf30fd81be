export { SluiceError, type SluiceErrorOptions } from "@sluice/schema";
export {
  type ConformanceSinkHints,
  type SinkConformanceCase,
  type SinkConformanceOptions,
  sinkConformanceCases,
} from "./conformance.js";
export type { DeadLetter, DeadLetterHandler, DisposableSink, Sink, SinkStatus } from "./sink.js";
export { SinkError, type SinkErrorCode } from "./sink-error.js";
export type { BatchingOptions, RetryOptions } from "./sink-options.js";
