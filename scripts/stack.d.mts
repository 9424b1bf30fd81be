// Types for scripts/stack.mjs, so TypeScript tests can import its helpers.
export declare class StackError extends Error {
  readonly service: string;
}
/** A private service process started for a fault test. */
export interface PrivateService {
  /** Pid of the current process (changes on `restart`). */
  readonly pid: number;
  /** Whether it was not stopped and its process is alive. */
  readonly running: boolean;
  /** Stops it (SIGTERM, then SIGKILL after the timeout) or kills it at once with `SIGKILL`; waits for the exit. Idempotent. */
  stop(options?: { signal?: "SIGTERM" | "SIGKILL"; timeoutMs?: number }): Promise<void>;
  /** Starts it again on the same ports and data directory, once stopped; resolves when it answers. */
  restart(): Promise<void>;
}
export interface PrivateKafka extends PrivateService {
  readonly brokers: string[];
  /** With `secure: true`: the CA that signed the broker's certificate. */
  readonly caFile?: string;
  /** With `secure: true`: SCRAM-SHA-512 credentials the broker accepts (PLAIN accepts the same). */
  readonly sasl?: { mechanism: "scram-sha-512"; username: string; password: string };
}
/**
 * Starts a private, throwaway KRaft broker for fault tests; reusing `dir` keeps
 * its topics. With `secure: true` its client listener requires SASL
 * (SCRAM-SHA-512 or PLAIN) over TLS; it then also uses `port + 2` internally.
 */
export declare function startPrivateKafka(options: {
  port: number;
  controllerPort?: number;
  dir: string;
  secure?: boolean;
}): Promise<PrivateKafka>;
export interface PrivateClickHouse extends PrivateService {
  /** HTTP URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
}
/**
 * Starts a private, throwaway ClickHouse server (configured like the stack's)
 * with its data, logs and configuration under `dir`; reusing `dir` keeps its tables.
 */
export declare function startPrivateClickHouse(options: {
  port: number;
  tcpPort: number;
  dir: string;
}): Promise<PrivateClickHouse>;
export interface PrivateRedis extends PrivateService {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
}
/** Starts a private, throwaway Redis server whose append-only file (fsync always) lives in `dir`. */
export declare function startPrivateRedis(options: {
  port: number;
  dir: string;
}): Promise<PrivateRedis>;
export interface Credentials {
  username: string;
  password: string;
}
/** Throwaway credentials of the local stack's secured users (made on first use in `~/.config/sluice/local-credentials.json`, or `SLUICE_CREDENTIALS_FILE`). */
export declare function localCredentials(): Record<"kafka" | "clickhouse" | "redis", Credentials>;
/** Throwaway CA and server certificate for 127.0.0.1 (made on first use under `.sluice/tls/`). */
export declare function localTls(): {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  p12File: string;
  p12Password: string;
};
export declare function addresses(): Record<
  "kafka" | "clickhouse" | "redis",
  { host: string; port: number }
>;
export declare function up(options?: { only?: string[] }): Promise<string[]>;
export declare function down(options?: { only?: string[] }): Promise<void>;
export declare function status(): Promise<boolean>;
export declare function allReady(): Promise<boolean>;
/** Directory of the Apache Kafka jars (Java client included), resolved by Maven on first use. */
export declare function kafkaJars(): string;
