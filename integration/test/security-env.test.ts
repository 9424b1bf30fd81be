// The SLUICE_* security settings: what each variable turns into, and that
// contradictory or incomplete settings fail at start with a message that
// names the variable but never echoes a secret.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import {
  EnvError,
  kafkaLogLevelFromEnv,
  kafkaSecurityFromEnv,
  readEnv,
  redactUrl,
} from "../src/env.js";
import { kafkaClientConfig, pipelineConfig } from "../src/pipeline/config.js";

const dir = mkdtempSync(path.join(tmpdir(), "sluice-env-"));
const caFile = path.join(dir, "ca.pem");
writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
const pwFile = path.join(dir, "password");
writeFileSync(pwFile, "from-a-file-secret\n");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("Kafka TLS and SASL from the environment", () => {
  it("is plaintext and unauthenticated by default", () => {
    expect(kafkaSecurityFromEnv({})).toEqual({});
    expect(readEnv({})).toEqual({
      kafkaBrokers: ["127.0.0.1:9092"],
      kafka: {},
      clickhouseUrl: "http://127.0.0.1:8123",
      redisUrl: "redis://127.0.0.1:6379",
    });
  });

  it("turns on TLS with the system CAs, or trusts a CA file, and adds SASL", () => {
    expect(kafkaSecurityFromEnv({ SLUICE_KAFKA_SSL: "true" })).toEqual({ ssl: true });
    const s = kafkaSecurityFromEnv({
      SLUICE_KAFKA_TLS_CA_FILE: caFile,
      SLUICE_KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
      SLUICE_KAFKA_SASL_USERNAME: "svc",
      SLUICE_KAFKA_SASL_PASSWORD_FILE: pwFile,
    });
    expect(s.ssl).toEqual({ ca: [expect.stringContaining("BEGIN CERTIFICATE")] });
    expect(s.sasl).toEqual({
      mechanism: "scram-sha-512",
      username: "svc",
      password: "from-a-file-secret",
    });
    const config = pipelineConfig("ns", { kafkaSecurity: s });
    expect(kafkaClientConfig(config, "me")).toMatchObject({
      clientId: "me",
      brokers: config.kafkaBrokers,
      ssl: s.ssl,
      sasl: s.sasl,
    });
    expect(kafkaClientConfig(pipelineConfig("ns", { kafkaSecurity: {} }), "me")).not.toHaveProperty(
      "sasl",
    );
  });

  it.each([
    [{ SLUICE_KAFKA_SASL_MECHANISM: "gssapi" }, /SLUICE_KAFKA_SASL_MECHANISM must be one of/],
    [
      { SLUICE_KAFKA_SASL_MECHANISM: "plain", SLUICE_KAFKA_SASL_USERNAME: "u" },
      /needs SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD/,
    ],
    [{ SLUICE_KAFKA_SASL_PASSWORD: "hunter2-secret" }, /need SLUICE_KAFKA_SASL_MECHANISM/],
    [{ SLUICE_KAFKA_SSL: "yes" }, /SLUICE_KAFKA_SSL must be true or false/],
    [{ SLUICE_KAFKA_SSL: "false", SLUICE_KAFKA_TLS_CA_FILE: caFile }, /contradicts/],
    [{ SLUICE_KAFKA_TLS_CERT_FILE: caFile }, /go together/],
    [{ SLUICE_KAFKA_TLS_CA_FILE: path.join(dir, "missing.pem") }, /cannot read .*ENOENT/],
  ])("refuses %o", (vars, message) => {
    let caught: unknown;
    try {
      kafkaSecurityFromEnv(vars);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EnvError);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toContain("hunter2-secret");
  });
});

describe("kafkajs log level", () => {
  it("is read by name, unset by default, and refused when unknown", () => {
    expect(kafkaLogLevelFromEnv({})).toBeUndefined();
    expect(kafkaLogLevelFromEnv({ SLUICE_KAFKA_LOG_LEVEL: "debug" })).toBe(5);
    expect(kafkaLogLevelFromEnv({ SLUICE_KAFKA_LOG_LEVEL: "Nothing" })).toBe(0);
    expect(() => kafkaLogLevelFromEnv({ SLUICE_KAFKA_LOG_LEVEL: "loud" })).toThrow(EnvError);
  });
});

describe("ClickHouse and Redis credentials", () => {
  it("are carried inside the URLs, percent-encoded, and redacted for logs", () => {
    const e = readEnv({
      SLUICE_CLICKHOUSE_URL: "https://ch.internal:8443",
      SLUICE_CLICKHOUSE_USERNAME: "sink",
      SLUICE_CLICKHOUSE_PASSWORD: "p@ss/w:rd",
      SLUICE_REDIS_URL: "rediss://redis.internal:6380/2",
      SLUICE_REDIS_USERNAME: "sluice",
      SLUICE_REDIS_PASSWORD_FILE: pwFile,
    });
    expect(e.clickhouseUrl).toBe("https://sink:p%40ss%2Fw%3Ard@ch.internal:8443");
    const ch = new URL(e.clickhouseUrl);
    expect(decodeURIComponent(ch.password)).toBe("p@ss/w:rd");
    expect(e.redisUrl).toBe("rediss://sluice:from-a-file-secret@redis.internal:6380/2");
    expect(redactUrl(e.clickhouseUrl)).toBe("https://sink:***@ch.internal:8443/");
    expect(redactUrl(e.redisUrl)).toBe("rediss://sluice:***@redis.internal:6380/2");
    expect(redactUrl("http://127.0.0.1:8123")).toBe("http://127.0.0.1:8123/");
  });

  it("refuses credentials both inside the URL and in the variables", () => {
    expect(() =>
      readEnv({
        SLUICE_REDIS_URL: "redis://a:b@127.0.0.1:6379",
        SLUICE_REDIS_PASSWORD: "c",
      }),
    ).toThrow(/either inside the URL or in SLUICE_REDIS_USERNAME\/SLUICE_REDIS_PASSWORD/);
  });
});

describe("deployment files keep passwords out of the ConfigMap and out of git", () => {
  const read = (p: string) => readFileSync(new URL(`../${p}`, import.meta.url), "utf8");
  const passwordVars = [
    "SLUICE_KAFKA_SASL_PASSWORD",
    "SLUICE_CLICKHOUSE_PASSWORD",
    "SLUICE_REDIS_PASSWORD",
  ];

  it("k8s: passwords come from the sluice-credentials Secret, empty in the repository", () => {
    const cm = parse(read("k8s/configmap.yaml")) as { data: Record<string, string> };
    expect(Object.keys(cm.data).filter((k) => /PASSWORD|SECRET|TOKEN/.test(k))).toEqual([]);
    const k = parse(read("k8s/kustomization.yaml")) as {
      secretGenerator: Array<{ name: string; envs: string[] }>;
    };
    const gen = k.secretGenerator.find((g) => g.name === "sluice-credentials")!;
    const lines = gen.envs
      .flatMap((f) => read(`k8s/${f}`).split("\n"))
      .filter((l) => l && !l.startsWith("#"));
    expect(lines.sort()).toEqual(passwordVars.map((v) => `${v}=`).sort());
    for (const file of ["k8s/aggregator.yaml", "k8s/producer.yaml"]) {
      const docs = parseAllDocuments(read(file)).map((d) => d.toJS());
      const workload = docs.find((d) => d.kind === "StatefulSet" || d.kind === "Deployment");
      const envFrom = workload.spec.template.spec.containers[0].envFrom;
      expect(envFrom).toContainEqual({ secretRef: { name: "sluice-credentials" } });
    }
  });

  it("compose: passwords are taken from the caller's environment, never written down", () => {
    const compose = parse(read("docker-compose.yml"), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string> }>;
    };
    for (const name of ["producer", "aggregator"]) {
      const e = compose.services[name]!.environment!;
      for (const v of passwordVars) expect(e[v]).toBe(`\${${v}:-}`);
    }
  });
});
