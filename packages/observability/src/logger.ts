import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import { REDACTED, redactDeep, redactString } from "./internal/redact.js";
import { ObservabilityError } from "./observability-error.js";

/**
 * Options of {@link createLogger}.
 *
 * @since 0.1.0
 */
export interface CreateLoggerOptions {
  /**
   * Minimum level: `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `silent`.
   * @defaultValue `"info"`
   */
  level?: string;
  /** Logger name, written as `name` on every line. */
  name?: string;
  /** Fields written on every line (for example `{ service: "aggregator" }`). */
  base?: Record<string, unknown>;
  /**
   * Extra pino redaction paths (`"req.headers.x-user"`), on top of the built-in
   * credential redaction.
   */
  redact?: string[];
  /**
   * Where JSON lines go.
   * @defaultValue standard output
   */
  destination?: DestinationStream;
}

const LEVELS = new Set(["trace", "debug", "info", "warn", "error", "fatal", "silent"]);

/**
 * Creates a pino logger writing one JSON object per line, with credentials
 * redacted before anything is written: fields named like secrets (password,
 * token, secret, apiKey, authorization, ...) at any depth, all of a `sasl`
 * object but its `mechanism`, key material in an `ssl` object, and passwords
 * inside URLs or `password=...` pairs in strings, messages included.
 *
 * @param options - {@link CreateLoggerOptions}
 * @returns a pino `Logger`
 * @throws ObservabilityError `OBSERVABILITY_INVALID_OPTIONS` for an unknown level
 * @example
 * ```ts
 * const logger = createLogger({ name: "aggregator", level: "info" });
 * logger.info({ sasl: { mechanism: "plain", username: "u", password: "p" } }, "connecting");
 * // {"level":30,...,"sasl":{"mechanism":"plain","username":"[redacted]","password":"[redacted]"},"msg":"connecting"}
 * ```
 * @since 0.1.0
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  if (typeof options !== "object" || options === null) {
    throw new ObservabilityError(
      "OBSERVABILITY_INVALID_OPTIONS",
      "createLogger: options must be an object",
    );
  }
  const level = options.level ?? "info";
  if (!LEVELS.has(level)) {
    throw new ObservabilityError(
      "OBSERVABILITY_INVALID_OPTIONS",
      `createLogger: level must be one of ${[...LEVELS].join(", ")}; got ${JSON.stringify(level)}`,
    );
  }
  if (
    options.redact !== undefined &&
    !(Array.isArray(options.redact) && options.redact.every((p) => typeof p === "string"))
  ) {
    throw new ObservabilityError(
      "OBSERVABILITY_INVALID_OPTIONS",
      `createLogger: redact must be a list of path strings; got ${JSON.stringify(options.redact)}`,
    );
  }
  const opts: LoggerOptions = {
    level,
    base: {
      pid: process.pid,
      ...(options.name ? { name: options.name } : {}),
      ...(options.base ? (redactDeep(options.base) as object) : {}),
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj) => redactDeep(obj) as Record<string, unknown>,
      bindings: (bindings) => redactDeep(bindings) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        const redacted = args.map((a) =>
          typeof a === "string" ? redactString(a) : a,
        ) as Parameters<typeof method>;
        return method.apply(this, redacted);
      },
    },
    ...(options.redact?.length ? { redact: { paths: options.redact, censor: REDACTED } } : {}),
  };
  const logger = options.destination ? pino(opts, options.destination) : pino(opts);
  // pino applies the bindings formatter to the root only: redact child
  // bindings here (children inherit this method through their prototype).
  const child = logger.child;
  logger.child = function redactedChild(this: Logger, bindings, childOptions) {
    return child.call(this, redactDeep(bindings) as typeof bindings, childOptions);
  } as typeof logger.child;
  return logger;
}

/**
 * A kafkajs log entry as passed to a `logCreator` (structural, so this
 * package does not depend on kafkajs).
 *
 * @since 0.1.0
 */
export interface KafkaLogEntry {
  namespace: string;
  level: number;
  label: string;
  log: { message: string; timestamp?: string; [key: string]: unknown };
}

/**
 * A kafkajs `logCreator`: pass it as `new Kafka({ logCreator })`.
 *
 * @since 0.1.0
 */
export type KafkaLogCreator = (logLevel: number) => (entry: KafkaLogEntry) => void;

/**
 * Routes kafkajs logs into a pino logger: each entry becomes one JSON line at
 * the matching level (`ERROR`→error, `WARN`→warn, `INFO`→info,
 * `DEBUG`→debug) with `component: "kafkajs"`, the kafkajs `namespace` and its
 * fields, credentials redacted as in {@link createLogger}. kafkajs still
 * filters by its own `logLevel` first.
 *
 * @param logger - a logger from {@link createLogger} (or any pino logger)
 * @returns a kafkajs `logCreator`
 * @example
 * ```ts
 * const logger = createLogger({ name: "aggregator" });
 * const kafka = new Kafka({ brokers, logCreator: kafkaLogCreator(logger) });
 * ```
 * @since 0.1.0
 */
export function kafkaLogCreator(logger: Logger): KafkaLogCreator {
  const child = logger.child({ component: "kafkajs" });
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = log;
      const entry = { namespace, ...(redactDeep(fields) as object) };
      const text = typeof message === "string" ? message : String(message);
      if (level <= 1) child.error(entry, text);
      else if (level === 2) child.warn(entry, text);
      else if (level <= 4) child.info(entry, text);
      else child.debug(entry, text);
    };
}
