// Types for scripts/stack.mjs, so TypeScript tests can import its helpers.
export declare class StackError extends Error {
  readonly service: string;
}
export interface PrivateKafka {
  readonly brokers: string[];
  readonly pid: number;
  /** Stops the broker (SIGTERM, then SIGKILL after the timeout) or kills it at once with `SIGKILL`. */
  stop(options?: { signal?: "SIGTERM" | "SIGKILL"; timeoutMs?: number }): Promise<void>;
}
/** Starts a private, throwaway KRaft broker for fault tests; reusing `dir` keeps its topics. */
export declare function startPrivateKafka(options: {
  port: number;
  controllerPort?: number;
  dir: string;
}): Promise<PrivateKafka>;
export declare function addresses(): Record<
  "kafka" | "clickhouse" | "redis",
  { host: string; port: number }
>;
export declare function up(options?: { only?: string[] }): Promise<string[]>;
export declare function down(options?: { only?: string[] }): Promise<void>;
export declare function status(): Promise<boolean>;
export declare function allReady(): Promise<boolean>;
