import { createLogger, kafkaLogCreator } from "@sluice/observability";
import { describe, expect, it } from "vitest";
import { captureLines } from "./helpers.js";

describe("createLogger", () => {
  it("writes one JSON object per line with level label, time, name and message", () => {
    const out = captureLines();
    const logger = createLogger({
      name: "agg",
      destination: out.destination,
      base: { service: "s" },
    });
    logger.info({ partition: 3 }, "assigned");
    logger.debug("hidden at info");
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).toMatchObject({
      level: "info",
      name: "agg",
      service: "s",
      partition: 3,
      msg: "assigned",
    });
    expect(typeof out.lines[0]!.time).toBe("string");
    expect(out.raw[0]!.endsWith("\n")).toBe(true);
  });

  it("redacts credentials at any depth, keeps the rest, never mutates the caller's object", () => {
    const out = captureLines();
    const logger = createLogger({ destination: out.destination });
    const config = {
      brokers: ["127.0.0.1:9092"],
      sasl: { mechanism: "scram-sha-512", username: "svc-agg", password: "hunter2-sasl" },
      ssl: {
        rejectUnauthorized: true,
        key: "-----BEGIN PRIVATE KEY-----abc",
        passphrase: "pp-secret",
      },
      nested: {
        deeper: { apiKey: "ak-123456", accessToken: "tok-abcdef", clientSecret: "cs-xyz", port: 9 },
      },
      headers: { authorization: "Bearer abc.def.ghi" },
      redisUrl: "redis://default:redis-pass-99@10.0.0.1:6379/0",
      dsn: "host=db password=pg-secret-7 user=x",
      list: [{ password: "in-array-pw" }],
      flags: { sasl: true, password: false },
      apiVersions: [{ apiKey: 18, maxVersion: 3 }],
      service: { apiKey: "svc-api-key-1" },
    };
    const before = JSON.stringify(config);
    logger.info({ config }, "connecting to http://admin:msg-pass-1@example.invalid/x");
    expect(JSON.stringify(config)).toBe(before);
    const text = out.raw.join("");
    for (const secret of [
      "hunter2-sasl",
      "svc-agg",
      "BEGIN PRIVATE KEY",
      "pp-secret",
      "ak-123456",
      "tok-abcdef",
      "cs-xyz",
      "abc.def.ghi",
      "redis-pass-99",
      "pg-secret-7",
      "in-array-pw",
      "msg-pass-1",
      "svc-api-key-1",
    ]) {
      expect(text).not.toContain(secret);
    }
    const c = (
      out.lines[0] as {
        config: {
          sasl: unknown;
          ssl: { rejectUnauthorized: boolean };
          nested: { deeper: { port: number } };
          brokers: string[];
          redisUrl: string;
          flags: unknown;
          apiVersions: unknown;
        };
      }
    ).config;
    expect(c.sasl).toEqual({
      mechanism: "scram-sha-512",
      username: "[redacted]",
      password: "[redacted]",
    });
    expect(c.ssl.rejectUnauthorized).toBe(true);
    expect(c.nested.deeper.port).toBe(9);
    expect(c.brokers).toEqual(["127.0.0.1:9092"]);
    expect(c.redisUrl).toBe("redis://default:[redacted]@10.0.0.1:6379/0");
    expect(c.flags).toEqual({ sasl: true, password: false });
    expect(c.apiVersions).toEqual([{ apiKey: 18, maxVersion: 3 }]);
    expect(out.lines[0]!.msg).toBe("connecting to http://admin:[redacted]@example.invalid/x");
  });

  it("redacts errors' messages and child bindings, and handles cycles", () => {
    const out = captureLines();
    const logger = createLogger({ destination: out.destination }).child({ token: "child-tok-1" });
    const cyclic: Record<string, unknown> = { name: "c" };
    cyclic.self = cyclic;
    logger.error({ err: new Error("connect redis://u:err-pass-2@h:1 failed"), cyclic }, "failed");
    const text = out.raw.join("");
    expect(text).not.toContain("err-pass-2");
    expect(text).not.toContain("child-tok-1");
    expect(out.lines[0]).toMatchObject({
      err: { type: "Error" },
      cyclic: { name: "c", self: "[circular]" },
    });
  });

  it("redacts inside error causes and aggregate errors, keeping the error class", () => {
    const out = captureLines();
    const logger = createLogger({ destination: out.destination });
    const cause = Object.assign(new Error("auth failed for http://u:cause-pw-3@h"), {
      config: { password: "cause-field-pw" },
    });
    const err = new AggregateError([new Error("token=agg-tok-4")], "batch failed", { cause });
    logger.error({ err }, "failed");
    const text = out.raw.join("");
    for (const secret of ["cause-pw-3", "cause-field-pw", "agg-tok-4"]) {
      expect(text).not.toContain(secret);
    }
    expect(out.lines[0]).toMatchObject({
      // pino's err serializer folds causes into the message
      err: {
        type: "AggregateError",
        message: "batch failed: auth failed for http://u:[redacted]@h",
      },
    });
  });

  it("redacts child bindings given with options, and grandchildren", () => {
    const out = captureLines();
    const logger = createLogger({ destination: out.destination, level: "debug" });
    const grandchild = logger
      .child({ apiKey: "child-key-5" }, { level: "debug" })
      .child({ db: "postgres://app:gc-pw-6@db/x" });
    grandchild.debug("hello");
    const text = out.raw.join("");
    expect(text).not.toContain("child-key-5");
    expect(text).not.toContain("gc-pw-6");
    expect(out.lines[0]).toMatchObject({ db: "postgres://app:[redacted]@db/x", msg: "hello" });
  });

  it("applies extra redaction paths", () => {
    const out = captureLines();
    const logger = createLogger({ destination: out.destination, redact: ["user.email"] });
    logger.info({ user: { email: "a@b.c", country: "NL" } }, "x");
    expect(out.lines[0]).toMatchObject({ user: { email: "[redacted]", country: "NL" } });
  });

  it("validates options", () => {
    expect(() => createLogger({ level: "loud" })).toThrowError(
      expect.objectContaining({ code: "OBSERVABILITY_INVALID_OPTIONS" }),
    );
    expect(() => createLogger({ redact: "x" as never })).toThrowError(
      expect.objectContaining({ code: "OBSERVABILITY_INVALID_OPTIONS" }),
    );
  });
});

describe("kafkaLogCreator", () => {
  it("maps kafkajs levels and fields, drops kafkajs' own timestamp, redacts", () => {
    const out = captureLines();
    const logger = createLogger({ level: "debug", destination: out.destination });
    const log = kafkaLogCreator(logger)(5);
    const entry = (level: number, message: string, extra: Record<string, unknown> = {}) =>
      log({
        namespace: "Connection",
        level,
        label: "X",
        log: { timestamp: "t", logger: "kafkajs", message, ...extra },
      });
    entry(1, "Connection error", {
      broker: "127.0.0.1:9092",
      sasl: { mechanism: "plain", password: "pw-1" },
    });
    entry(2, "warned");
    entry(4, "info");
    entry(5, "debug");
    expect(out.lines.map((l) => l.level)).toEqual(["error", "warn", "info", "debug"]);
    expect(out.lines[0]).toMatchObject({
      component: "kafkajs",
      namespace: "Connection",
      broker: "127.0.0.1:9092",
      sasl: { mechanism: "plain", password: "[redacted]" },
      msg: "Connection error",
    });
    expect(out.lines[0]).not.toHaveProperty("timestamp");
    expect(out.lines[0]).not.toHaveProperty("logger");
    expect(out.raw.join("")).not.toContain("pw-1");
  });
});
