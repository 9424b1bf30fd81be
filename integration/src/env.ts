import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { logLevel, type SASLOptions } from "kafkajs";

/** How the Kafka clients authenticate and encrypt: kafkajs `ssl` and `sasl`. */
export interface KafkaSecurity {
  /** TLS: `true` for the system's CAs, or Node TLS options (own CA, client certificate). Absent: plaintext. */
  ssl?: ConnectionOptions | boolean;
  /** SASL mechanism and credentials. Absent: no authentication. */
  sasl?: SASLOptions;
}

/** The `SLUICE_*` settings of one deployment: addresses and credentials. */
export interface Env {
  kafkaBrokers: string[];
  /** TLS/SASL of every Kafka client of the pipeline. */
  kafka: KafkaSecurity;
  /** ClickHouse URL; a user and password from the environment are carried inside it. */
  clickhouseUrl: string;
  /** Redis URL; a user and password from the environment are carried inside it. */
  redisUrl: string;
}

/** A setting of the environment that cannot work; the message names the variable, never a secret. */
export class EnvError extends Error {
  override name = "EnvError";
}

const MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;

function read(vars: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = vars[name]?.trim();
  return value ? value : undefined;
}

/** A secret from `NAME` or from the file named by `NAME_FILE` (a mounted Kubernetes Secret). */
function secret(vars: NodeJS.ProcessEnv, name: string): string | undefined {
  const file = read(vars, `${name}_FILE`);
  if (file === undefined) return vars[name] || undefined;
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new EnvError(
      `${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}

function file(vars: NodeJS.ProcessEnv, name: string): string | undefined {
  const p = read(vars, name);
  if (p === undefined) return undefined;
  try {
    return readFileSync(p, "utf8");
  } catch (err) {
    throw new EnvError(`${name}: cannot read ${p} (${(err as NodeJS.ErrnoException).code})`);
  }
}

/**
 * Kafka TLS and SASL from the environment:
 *
 * - `SLUICE_KAFKA_SSL=true` turns TLS on with the system's CAs;
 *   `SLUICE_KAFKA_TLS_CA_FILE` (PEM) trusts that CA instead and implies TLS;
 *   `SLUICE_KAFKA_TLS_CERT_FILE` + `SLUICE_KAFKA_TLS_KEY_FILE` add a client certificate (mutual TLS).
 * - `SLUICE_KAFKA_SASL_MECHANISM` (`scram-sha-512`, `scram-sha-256` or `plain`) with
 *   `SLUICE_KAFKA_SASL_USERNAME` and `SLUICE_KAFKA_SASL_PASSWORD` (or `..._PASSWORD_FILE`).
 *
 * @param vars - the environment @defaultValue process.env
 * @returns kafkajs `ssl` / `sasl` settings; empty for a plaintext, unauthenticated cluster
 * @throws EnvError on an unknown mechanism, a mechanism without credentials, or an unreadable file
 */
export function kafkaSecurityFromEnv(vars: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const out: KafkaSecurity = {};
  const ca = file(vars, "SLUICE_KAFKA_TLS_CA_FILE");
  const cert = file(vars, "SLUICE_KAFKA_TLS_CERT_FILE");
  const key = file(vars, "SLUICE_KAFKA_TLS_KEY_FILE");
  if ((cert === undefined) !== (key === undefined)) {
    throw new EnvError("SLUICE_KAFKA_TLS_CERT_FILE and SLUICE_KAFKA_TLS_KEY_FILE go together");
  }
  const sslFlag = read(vars, "SLUICE_KAFKA_SSL")?.toLowerCase();
  if (sslFlag !== undefined && !["true", "false", "1", "0"].includes(sslFlag)) {
    throw new EnvError(`SLUICE_KAFKA_SSL must be true or false; got ${JSON.stringify(sslFlag)}`);
  }
  const sslOn = sslFlag === "true" || sslFlag === "1";
  if (ca !== undefined || cert !== undefined) {
    if (sslFlag === "false" || sslFlag === "0") {
      throw new EnvError("SLUICE_KAFKA_SSL=false contradicts the SLUICE_KAFKA_TLS_* files");
    }
    out.ssl = {
      ...(ca === undefined ? {} : { ca: [ca] }),
      ...(cert === undefined ? {} : { cert, key }),
    };
  } else if (sslOn) {
    out.ssl = true;
  }
  const mechanism = read(vars, "SLUICE_KAFKA_SASL_MECHANISM")?.toLowerCase();
  const username = read(vars, "SLUICE_KAFKA_SASL_USERNAME");
  const password = secret(vars, "SLUICE_KAFKA_SASL_PASSWORD");
  if (mechanism === undefined) {
    if (username !== undefined || password !== undefined) {
      throw new EnvError(
        "SLUICE_KAFKA_SASL_USERNAME/PASSWORD need SLUICE_KAFKA_SASL_MECHANISM (scram-sha-512, scram-sha-256 or plain)",
      );
    }
    return out;
  }
  if (!(MECHANISMS as readonly string[]).includes(mechanism)) {
    throw new EnvError(
      `SLUICE_KAFKA_SASL_MECHANISM must be one of ${MECHANISMS.join(", ")}; got ${JSON.stringify(mechanism)}`,
    );
  }
  if (username === undefined || password === undefined) {
    throw new EnvError(
      `SLUICE_KAFKA_SASL_MECHANISM=${mechanism} needs SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD`,
    );
  }
  out.sasl = { mechanism, username, password } as SASLOptions;
  return out;
}

/**
 * A service URL with the user and password from the environment put inside
 * it (percent-encoded), unless it already carries its own.
 */
function withCredentials(
  url: string,
  vars: NodeJS.ProcessEnv,
  userVar: string,
  passwordVar: string,
): string {
  const username = read(vars, userVar);
  const password = secret(vars, passwordVar);
  if (username === undefined && password === undefined) return url;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EnvError(`the URL next to ${userVar}/${passwordVar} is not a valid URL`);
  }
  if (u.username || u.password) {
    throw new EnvError(
      `give the credentials either inside the URL or in ${userVar}/${passwordVar}, not both`,
    );
  }
  if (username !== undefined) u.username = encodeURIComponent(username);
  if (password !== undefined) u.password = encodeURIComponent(password);
  return u.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
}

/**
 * Reads the deployment's settings from `SLUICE_*` environment variables,
 * defaulting to the local stack (`npm run stack:up`) on loopback:
 * `SLUICE_KAFKA_BROKERS` (comma-separated), the Kafka security of
 * {@link kafkaSecurityFromEnv}, `SLUICE_CLICKHOUSE_URL` with
 * `SLUICE_CLICKHOUSE_USERNAME` / `SLUICE_CLICKHOUSE_PASSWORD`, and
 * `SLUICE_REDIS_URL` (`rediss://` for TLS) with `SLUICE_REDIS_USERNAME` /
 * `SLUICE_REDIS_PASSWORD`. Every password may come from a file instead
 * (`<NAME>_FILE`).
 *
 * @param vars - the environment @defaultValue process.env
 * @returns the settings
 * @throws EnvError on contradictory or incomplete settings
 */
export function readEnv(vars: NodeJS.ProcessEnv = process.env): Env {
  return {
    kafkaBrokers: (vars.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
      .split(",")
      .map((b) => b.trim())
      .filter(Boolean),
    kafka: kafkaSecurityFromEnv(vars),
    clickhouseUrl: withCredentials(
      vars.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123",
      vars,
      "SLUICE_CLICKHOUSE_USERNAME",
      "SLUICE_CLICKHOUSE_PASSWORD",
    ),
    redisUrl: withCredentials(
      vars.SLUICE_REDIS_URL ?? "redis://127.0.0.1:6379",
      vars,
      "SLUICE_REDIS_USERNAME",
      "SLUICE_REDIS_PASSWORD",
    ),
  };
}

/**
 * Addresses and credentials of the services the pipeline and the tests talk
 * to, read once from these environment variables (see {@link readEnv}).
 */
export const env: Env = readEnv({
  SLUICE_KAFKA_BROKERS: process.env.SLUICE_KAFKA_BROKERS,
  SLUICE_KAFKA_SSL: process.env.SLUICE_KAFKA_SSL,
  SLUICE_KAFKA_TLS_CA_FILE: process.env.SLUICE_KAFKA_TLS_CA_FILE,
  SLUICE_KAFKA_TLS_CERT_FILE: process.env.SLUICE_KAFKA_TLS_CERT_FILE,
  SLUICE_KAFKA_TLS_KEY_FILE: process.env.SLUICE_KAFKA_TLS_KEY_FILE,
  SLUICE_KAFKA_SASL_MECHANISM: process.env.SLUICE_KAFKA_SASL_MECHANISM,
  SLUICE_KAFKA_SASL_USERNAME: process.env.SLUICE_KAFKA_SASL_USERNAME,
  SLUICE_KAFKA_SASL_PASSWORD: process.env.SLUICE_KAFKA_SASL_PASSWORD,
  SLUICE_KAFKA_SASL_PASSWORD_FILE: process.env.SLUICE_KAFKA_SASL_PASSWORD_FILE,
  SLUICE_CLICKHOUSE_URL: process.env.SLUICE_CLICKHOUSE_URL,
  SLUICE_CLICKHOUSE_USERNAME: process.env.SLUICE_CLICKHOUSE_USERNAME,
  SLUICE_CLICKHOUSE_PASSWORD: process.env.SLUICE_CLICKHOUSE_PASSWORD,
  SLUICE_CLICKHOUSE_PASSWORD_FILE: process.env.SLUICE_CLICKHOUSE_PASSWORD_FILE,
  SLUICE_REDIS_URL: process.env.SLUICE_REDIS_URL,
  SLUICE_REDIS_USERNAME: process.env.SLUICE_REDIS_USERNAME,
  SLUICE_REDIS_PASSWORD: process.env.SLUICE_REDIS_PASSWORD,
  SLUICE_REDIS_PASSWORD_FILE: process.env.SLUICE_REDIS_PASSWORD_FILE,
});

/**
 * A URL fit for logs: its password replaced by `***`.
 *
 * @param url - a service URL, possibly with credentials
 * @returns the URL without its password
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^/@:]*):[^/@]*@/, "//$1:***@");
  }
}

/**
 * The kafkajs log level named by `SLUICE_KAFKA_LOG_LEVEL` (`nothing`, `error`,
 * `warn`, `info`, `debug`), for the services' Kafka clients.
 *
 * @param vars - the environment @defaultValue process.env
 * @returns the level, or undefined when unset (each client keeps its default)
 * @throws EnvError on another value
 */
export function kafkaLogLevelFromEnv(vars: NodeJS.ProcessEnv = process.env): logLevel | undefined {
  const name = read(vars, "SLUICE_KAFKA_LOG_LEVEL")?.toUpperCase();
  if (name === undefined) return undefined;
  const level = (logLevel as unknown as Record<string, logLevel>)[name];
  if (level === undefined) {
    throw new EnvError(
      `SLUICE_KAFKA_LOG_LEVEL must be nothing, error, warn, info or debug; got ${JSON.stringify(name.toLowerCase())}`,
    );
  }
  return level;
}

/** A name no other test or run uses: `<prefix>_<time>_<random>`, safe as a topic, table or key. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}
