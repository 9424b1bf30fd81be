export {
  type AggregateResult,
  type AggregationSpec,
  type Aggregator,
  type AnyAggregator,
  aggregator,
  avg,
  combine,
  count,
  countDistinct,
  latest,
  max,
  min,
  quantiles,
  sum,
  topK,
} from "./aggregations.js";
export { replacePreviousMember } from "./internal/previous-member.js";
export {
  createJob,
  defineJob,
  Job,
  type JobOptions,
  type SourceCodec,
  type SourceOptions,
} from "./job.js";
export type {
  Enriched,
  Joined,
  JoinStream,
  JoinTable,
  JoinType,
  StreamJoinOptions,
  TableJoinOptions,
} from "./joins.js";
export {
  PatternBuilder,
  type PatternMatch,
  type PatternOptions,
  pattern,
} from "./patterns.js";
export type { Sink } from "./sink.js";
export {
  createTestDriver,
  type DeadLetter,
  type PipeOptions,
  TestDriver,
  type TestDriverOptions,
} from "./test-driver.js";
export {
  type EmitMode,
  type EmitOptions,
  isRetraction,
  type LateRecord,
  type WindowResult,
  type WindowRetraction,
  windowResultId,
} from "./window-result.js";
export { WindowingError, type WindowingErrorCode } from "./windowing-error.js";
export {
  type HoppingWindow,
  hopping,
  type SessionWindow,
  type SlidingWindow,
  session,
  sliding,
  type TumblingWindow,
  tumbling,
  type WindowSpec,
} from "./windows.js";
export {
  type JobFactory,
  type MemberState,
  runWorkers,
  type WorkerContext,
  type WorkerMemberStatus,
  type Workers,
  type WorkersEvent,
  type WorkersOptions,
  type WorkersRestartOptions,
  type WorkersStatus,
} from "./workers.js";
