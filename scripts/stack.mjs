#!/usr/bin/env node
// Local stack without Docker: a KRaft Kafka broker from the Apache Kafka jars
// (resolved by Maven), the Debian ClickHouse server and the Debian Redis server,
// all on loopback, all data under .sluice/.
//
//   node scripts/stack.mjs up       start what is not running (idempotent)
//   node scripts/stack.mjs down     stop exactly what `up` started (pid files)
//   node scripts/stack.mjs status   report each service, its version and pid
//
// Only Node built-ins are used so this runs before `npm ci`.
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const home = path.resolve(process.env.SLUICE_HOME ?? path.join(root, ".sluice"));
const KAFKA_VERSION = "3.9.1";

export class StackError extends Error {
  constructor(service, message) {
    super(`[${service}] ${message}`);
    this.name = "StackError";
    this.service = service;
  }
}

function hostPort(value, fallbackPort) {
  const u = new URL(value.includes("://") ? value : `tcp://${value}`);
  return { host: u.hostname || "127.0.0.1", port: Number(u.port || fallbackPort) };
}

export function addresses() {
  const kafka = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",")[0].trim();
  const clickhouse = process.env.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
  const redis = process.env.SLUICE_REDIS_URL ?? "redis://127.0.0.1:6379";
  return {
    kafka: hostPort(kafka, 9092),
    clickhouse: hostPort(clickhouse, 8123),
    redis: hostPort(redis, 6379),
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tcpOpen({ host, port }, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

function httpGet(url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

function redisCommand({ host, port }, command, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let buf = "";
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      reject(new Error("timeout"));
    });
    s.on("connect", () => s.write(command));
    s.on("data", (d) => {
      buf += d.toString("utf8");
      if (buf.startsWith("+") || buf.startsWith("-")) {
        if (buf.includes("\r\n")) {
          s.end();
          resolve(buf.trim());
        }
      } else if (buf.startsWith("$")) {
        const nl = buf.indexOf("\r\n");
        const len = Number(buf.slice(1, nl));
        if (buf.length >= nl + 2 + len) {
          s.end();
          resolve(buf.slice(nl + 2, nl + 2 + len));
        }
      }
    });
    s.on("error", reject);
  });
}

// Kafka ApiVersions v0 request over a raw socket: proves the broker answers the
// protocol, not only that the port is open.
function kafkaApiVersions({ host, port }, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const clientId = Buffer.from("sluice-stack");
    const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
    let o = 0;
    o = body.writeInt16BE(18, o); // ApiVersions
    o = body.writeInt16BE(0, o); // v0
    o = body.writeInt32BE(1, o); // correlation id
    o = body.writeInt16BE(clientId.length, o);
    clientId.copy(body, o);
    const frame = Buffer.concat([Buffer.alloc(4), body]);
    frame.writeInt32BE(body.length, 0);
    const s = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on("connect", () => s.write(frame));
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 10) {
        const errorCode = buf.readInt16BE(8);
        done(errorCode === 0);
      }
    });
    s.on("error", () => done(false));
  });
}

function pidFile(name) {
  return path.join(home, "run", `${name}.pid`);
}

function readPid(name) {
  try {
    const pid = Number(fs.readFileSync(pidFile(name), "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); treat it as gone.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/\) Z /.test(stat);
  } catch {
    return true;
  }
}

function listenerOf(port) {
  const r = spawnSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
  const line = (r.stdout ?? "").trim().split("\n")[0];
  if (!line) return "an unknown process";
  const m = line.match(/users:\(\("([^"]+)",pid=(\d+)/);
  return m ? `${m[1]} (pid ${m[2]})` : line;
}

function tail(file, lines = 30) {
  try {
    const text = fs.readFileSync(file, "utf8").trimEnd().split("\n");
    return text.slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function which(cmd) {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function launch(name, cmd, args, { cwd, logFile, env }) {
  fs.mkdirSync(path.dirname(pidFile(name)), { recursive: true });
  const out = fs.openSync(logFile, "a");
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ["ignore", out, out],
  });
  child.unref();
  fs.closeSync(out);
  fs.writeFileSync(pidFile(name), String(child.pid));
  return child.pid;
}

async function waitReady(service, pid, logFile, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  while (Date.now() < deadline) {
    if (!alive(pid)) {
      throw new StackError(
        service,
        `exited during start-up. Last lines of ${logFile}:\n${tail(logFile)}`,
      );
    }
    if (await probe()) return;
    await sleep(delay);
    delay = Math.min(delay * 1.5, 1000);
  }
  throw new StackError(
    service,
    `did not become ready within ${timeoutMs / 1000}s. Last lines of ${logFile}:\n${tail(logFile)}`,
  );
}

// ---------------------------------------------------------------- Kafka

function kafkaLibs() {
  return path.join(home, "kafka", `libs-${KAFKA_VERSION}`);
}

function resolveKafkaJars() {
  const libs = kafkaLibs();
  const marker = path.join(libs, ".complete");
  if (fs.existsSync(marker)) return libs;
  if (!which("mvn")) {
    throw new StackError(
      "kafka",
      "Maven (mvn) is not installed; it resolves the Kafka jars. Install it (apt-get install -y maven).",
    );
  }
  fs.rmSync(libs, { recursive: true, force: true });
  fs.mkdirSync(libs, { recursive: true });
  console.log(`[kafka] resolving Apache Kafka ${KAFKA_VERSION} jars with Maven ...`);
  const pom = path.join(root, "integration", "stack", "kafka", "pom.xml");
  const r = spawnSync(
    "mvn",
    [
      "-B",
      "-q",
      "-f",
      pom,
      `-Dmaven.repo.local=${path.join(home, "m2")}`,
      `-Dkafka.version=${KAFKA_VERSION}`,
      "dependency:copy-dependencies",
      `-DoutputDirectory=${libs}`,
      "-DincludeScope=runtime",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  if (r.status !== 0) {
    throw new StackError(
      "kafka",
      `Maven could not resolve the Kafka jars (exit ${r.status}):\n${(r.stdout + r.stderr).split("\n").slice(-30).join("\n")}`,
    );
  }
  fs.writeFileSync(marker, new Date().toISOString());
  return libs;
}

/**
 * The Apache Kafka jars the local stack runs (resolved by Maven on first use),
 * for tests that check interoperability with the Java client.
 */
export function kafkaJars() {
  return resolveKafkaJars();
}

// ---------------------------------------------------------------- credentials and TLS

/**
 * Throwaway credentials for the secured services of the local stack, made at
 * random on first use and kept in `~/.config/sluice/local-credentials.json`
 * (mode 0600; `SLUICE_CREDENTIALS_FILE` overrides the path).
 * They protect nothing but local test services; never reuse them.
 */
export function localCredentials() {
  // One file per machine user, not per checkout: a stack started from one
  // clone is used by tests in another.
  const file = path.resolve(
    process.env.SLUICE_CREDENTIALS_FILE ??
      path.join(os.homedir(), ".config", "sluice", "local-credentials.json"),
  );
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {}
  const secret = () => randomBytes(18).toString("base64url");
  const creds = {
    kafka: { username: "sluice", password: secret() },
    clickhouse: { username: "sluice", password: secret() },
    redis: { username: "sluice", password: secret() },
  };
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  return creds;
}

function openssl(args, cwd) {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) {
    throw new StackError("tls", `openssl ${args[0]} failed: ${r.stderr.trim()}`);
  }
}

/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1 and
 * localhost, made with openssl under `.sluice/tls/` on first use.
 *
 * @returns paths of `ca.pem`, `server.pem`, `server.key`, `server.p12` and the p12 password
 */
export function localTls() {
  const dir = path.join(home, "tls");
  const out = {
    dir,
    caFile: path.join(dir, "ca.pem"),
    certFile: path.join(dir, "server.pem"),
    keyFile: path.join(dir, "server.key"),
    p12File: path.join(dir, "server.p12"),
    p12Password: "",
  };
  const pwFile = path.join(dir, "p12.password");
  if (fs.existsSync(out.p12File) && fs.existsSync(pwFile)) {
    out.p12Password = fs.readFileSync(pwFile, "utf8").trim();
    return out;
  }
  if (!which("openssl")) {
    throw new StackError("tls", "openssl is not installed; it makes the local test certificates.");
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  out.p12Password = randomBytes(12).toString("base64url");
  fs.writeFileSync(pwFile, out.p12Password, { mode: 0o600 });
  fs.writeFileSync(
    path.join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "30",
      "-subj",
      "/CN=sluice-local-test-ca",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
    ],
    dir,
  );
  openssl(
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
    ],
    dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "30",
      "-extfile",
      "server.ext",
      "-out",
      "server.pem",
    ],
    dir,
  );
  openssl(
    [
      "pkcs12",
      "-export",
      "-in",
      "server.pem",
      "-inkey",
      "server.key",
      "-certfile",
      "ca.pem",
      "-name",
      "server",
      "-out",
      "server.p12",
      "-passout",
      `pass:${out.p12Password}`,
    ],
    dir,
  );
  return out;
}

// ---------------------------------------------------------------- Kafka config

function kafkaConfig(
  addr,
  dir = path.join(home, "kafka"),
  controllerPort = undefined,
  secure = undefined,
) {
  const dataDir = path.join(dir, "data");
  controllerPort ??= Number(process.env.SLUICE_KAFKA_CONTROLLER_PORT ?? addr.port + 1);
  const internalPort = secure ? controllerPort + 1 : undefined;
  const listeners = secure
    ? [
        `listeners=SASL_SSL://127.0.0.1:${addr.port},INTERNAL://127.0.0.1:${internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
        `advertised.listeners=SASL_SSL://127.0.0.1:${addr.port},INTERNAL://127.0.0.1:${internalPort}`,
        "inter.broker.listener.name=INTERNAL",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
        `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${secure.username}="${secure.password}";`,
        "ssl.keystore.type=PKCS12",
        `ssl.keystore.location=${secure.tls.p12File}`,
        `ssl.keystore.password=${secure.tls.p12Password}`,
        `ssl.key.password=${secure.tls.p12Password}`,
        "ssl.client.auth=none",
      ]
    : [
        `listeners=PLAINTEXT://127.0.0.1:${addr.port},CONTROLLER://127.0.0.1:${controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${addr.port}`,
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
      ];
  const props = [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    ...listeners,
    "controller.listener.names=CONTROLLER",
    `log.dirs=${dataDir}`,
    "num.partitions=1",
    "auto.create.topics.enable=false",
    "offsets.topic.replication.factor=1",
    "offsets.topic.num.partitions=12",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "transaction.state.log.num.partitions=12",
    "min.insync.replicas=1",
    "default.replication.factor=1",
    "group.initial.rebalance.delay.ms=0",
    // No time-based retention: Kafka deletes a segment once its newest record
    // timestamp is older than the retention, and the producer stamps records
    // with their event time, which tests and the demo replay from days or
    // months ago — a 24 h retention deleted their source, repartition and
    // changelog records in the middle of a run (every 5 minutes, at the
    // retention check). Test topics are deleted by the tests themselves.
    "log.retention.ms=-1",
    "log.segment.bytes=104857600",
    "delete.topic.enable=true",
    "num.io.threads=4",
    "num.network.threads=2",
  ].join("\n");
  fs.mkdirSync(dir, { recursive: true });
  const propsFile = path.join(dir, "server.properties");
  fs.writeFileSync(propsFile, `${props}\n`);
  const log4j = path.join(dir, "log4j.properties");
  fs.writeFileSync(
    log4j,
    [
      "log4j.rootLogger=WARN, file",
      "log4j.logger.kafka=INFO",
      "log4j.logger.org.apache.kafka=WARN",
      "log4j.appender.file=org.apache.log4j.RollingFileAppender",
      `log4j.appender.file.File=${path.join(dir, "server.log")}`,
      "log4j.appender.file.MaxFileSize=20MB",
      "log4j.appender.file.MaxBackupIndex=2",
      "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
      "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
      "",
    ].join("\n"),
  );
  return { dir, dataDir, propsFile, log4j, controllerPort, internalPort };
}

async function kafkaUp(addr, { dir, controllerPort, pidName = "kafka", secure } = {}) {
  if (!which("java")) {
    throw new StackError(
      "kafka",
      "Java is not installed; the broker runs on it. Install a JDK 17 (apt-get install -y openjdk-17-jre-headless).",
    );
  }
  const libs = resolveKafkaJars();
  const cfg = kafkaConfig(addr, dir, controllerPort, secure);
  if (await tcpOpen({ host: addr.host, port: cfg.controllerPort })) {
    throw new StackError(
      "kafka",
      `controller port ${cfg.controllerPort} is taken by ${listenerOf(cfg.controllerPort)}; free it or set SLUICE_KAFKA_CONTROLLER_PORT.`,
    );
  }
  const cp = `${libs}/*`;
  const jvm = [
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
    `-Dlog4j.configuration=file:${cfg.log4j}`,
    `-Dkafka.logs.dir=${cfg.dir}`,
  ];
  if (!fs.existsSync(path.join(cfg.dataDir, "meta.properties"))) {
    // A base64url id may start with "-", which the storage tool would read as
    // an option: draw again until it does not.
    let clusterId = "-";
    while (clusterId.startsWith("-")) {
      clusterId = Buffer.from(randomUUID().replace(/-/g, ""), "hex")
        .toString("base64url")
        .slice(0, 22);
    }
    const r = spawnSync(
      "java",
      [
        ...jvm,
        "-cp",
        cp,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        clusterId,
        "-c",
        cfg.propsFile,
        ...(secure
          ? [
              "--add-scram",
              `SCRAM-SHA-512=[name="${secure.username}",password="${secure.password}"]`,
            ]
          : []),
      ],
      { encoding: "utf8" },
    );
    if (r.status !== 0) {
      throw new StackError("kafka", `formatting the KRaft log failed:\n${r.stdout}${r.stderr}`);
    }
  }
  const logFile = path.join(cfg.dir, "stdout.log");
  const pid = launch(pidName, "java", [...jvm, "-cp", cp, "kafka.Kafka", cfg.propsFile], {
    cwd: cfg.dir,
    logFile,
  });
  // A secured broker is probed on its internal plaintext listener (loopback only).
  const probeAddr = secure ? { host: addr.host, port: cfg.internalPort } : addr;
  await waitReady("kafka", pid, logFile, () => kafkaApiVersions(probeAddr), 120_000);
  return pid;
}

/**
 * Starts a private, throwaway KRaft broker for fault tests (stop/kill/restart
 * without disturbing the shared stack). Its data lives in `dir`; restarting
 * with the same `dir` keeps its topics.
 *
 * @returns `{ brokers, pid, running, stop({ signal }), restart() }`; `stop` waits for the process to exit, `restart` starts it again on the same ports and `dir`.
 */
export async function startPrivateKafka({ port, controllerPort = port + 1, dir, secure = false }) {
  const addr = { host: "127.0.0.1", port };
  const name = `kafka-private-${port}`;
  const security = secure ? { ...localCredentials().kafka, tls: localTls() } : undefined;
  const handle = await privateService(
    "kafka",
    name,
    [addr, { ...addr, port: controllerPort }],
    () => kafkaUp(addr, { dir, controllerPort, pidName: name, secure: security }),
  );
  return Object.assign(handle, {
    brokers: [`127.0.0.1:${port}`],
    ...(security
      ? {
          caFile: security.tls.caFile,
          sasl: {
            mechanism: "scram-sha-512",
            username: security.username,
            password: security.password,
          },
        }
      : {}),
  });
}

/**
 * A handle on a private service process: `pid` (of the current process),
 * `running`, `stop({ signal, timeoutMs })` (SIGTERM then SIGKILL after the
 * timeout, or SIGKILL at once; waits for the exit; idempotent) and `restart()`
 * (starts it again on the same ports and data directory once stopped).
 */
async function privateService(service, name, addrs, start) {
  // A process just killed on one of these ports can hold its listening socket
  // for a moment after it is gone: give it a few seconds to go.
  const portsFree = async () => {
    const freeBy = Date.now() + 10_000;
    for (const addr of addrs) {
      while ((await tcpOpen(addr)) && Date.now() < freeBy) await sleep(250);
      if (await tcpOpen(addr)) {
        throw new StackError(service, `port ${addr.port} is taken by ${listenerOf(addr.port)}`);
      }
    }
  };
  await portsFree();
  let pid = await start();
  let stopped = false;
  return {
    get pid() {
      return pid;
    },
    get running() {
      return !stopped && alive(pid);
    },
    async stop({ signal = "SIGTERM", timeoutMs = 30_000 } = {}) {
      stopped = true;
      if (signal === "SIGKILL") {
        signalTree(pid, "SIGKILL");
        while (alive(pid)) await sleep(50);
      } else if (alive(pid)) {
        await stopPid(name, pid, timeoutMs);
      }
      fs.rmSync(pidFile(name), { force: true });
    },
    async restart() {
      if (alive(pid)) throw new StackError(service, `pid ${pid} is still running; stop it first`);
      await portsFree();
      pid = await start();
      stopped = false;
    },
  };
}

/**
 * Starts a private, throwaway ClickHouse server for fault tests (stop, kill
 * and restart it without disturbing the shared stack), configured like the
 * stack's own, with its data, logs and configuration under `dir`.
 *
 * @returns a handle with `url`, `pid`, `stop({ signal })` and `restart()`
 */
export async function startPrivateClickHouse({ port, tcpPort, dir }) {
  const addr = { host: "127.0.0.1", port };
  const name = `clickhouse-private-${port}`;
  const handle = await privateService("clickhouse", name, [addr, { ...addr, port: tcpPort }], () =>
    clickhouseUp(addr, { dir, tcpPort, pidName: name }),
  );
  return Object.assign(handle, { url: `http://127.0.0.1:${port}` });
}

/**
 * Starts a private, throwaway Redis server for fault tests, with its
 * append-only file (fsync on every write, so even a SIGKILL loses nothing
 * acknowledged) under `dir`; a restart reloads it.
 *
 * @returns a handle with `url`, `pid`, `stop({ signal })` and `restart()`
 */
export async function startPrivateRedis({ port, dir }) {
  const addr = { host: "127.0.0.1", port };
  const name = `redis-private-${port}`;
  const handle = await privateService("redis", name, [addr], () =>
    redisUp(addr, { dir, pidName: name, appendfsync: "always" }),
  );
  return Object.assign(handle, { url: `redis://127.0.0.1:${port}` });
}

// ---------------------------------------------------------------- ClickHouse

function clickhouseConfig(
  addr,
  dir = path.join(home, "clickhouse"),
  tcpPort = Number(process.env.SLUICE_CLICKHOUSE_TCP_PORT ?? 19000),
) {
  const secureUser = localCredentials().clickhouse;
  const passwordSha256 = createHash("sha256").update(secureUser.password).digest("hex");
  for (const d of ["data", "tmp", "user_files", "format_schemas", "log"]) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  const config = `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/log/clickhouse-server.log</log>
    <errorlog>${dir}/log/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <http_port>${addr.port}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
`;
  const users = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <${secureUser.username}>
      <password_sha256_hex>${passwordSha256}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${secureUser.username}>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;
  fs.writeFileSync(path.join(dir, "config.xml"), config);
  fs.writeFileSync(path.join(dir, "users.xml"), users, { mode: 0o600 });
  return { dir, configFile: path.join(dir, "config.xml"), tcpPort };
}

async function clickhouseReady(addr) {
  try {
    const r = await httpGet(`http://${addr.host}:${addr.port}/ping`);
    return r.status === 200 && r.body.startsWith("Ok");
  } catch {
    return false;
  }
}

async function clickhouseUp(addr, { dir, tcpPort, pidName = "clickhouse" } = {}) {
  const bin = which("clickhouse-server") ?? which("clickhouse");
  if (!bin) {
    throw new StackError(
      "clickhouse",
      "clickhouse-server is not installed. Install it: apt-get update && apt-get install -y clickhouse-server",
    );
  }
  const cfg = clickhouseConfig(addr, dir, tcpPort);
  if (await tcpOpen({ host: addr.host, port: cfg.tcpPort })) {
    throw new StackError(
      "clickhouse",
      `native port ${cfg.tcpPort} is taken by ${listenerOf(cfg.tcpPort)}; free it or set SLUICE_CLICKHOUSE_TCP_PORT.`,
    );
  }
  const logFile = path.join(cfg.dir, "log", "stdout.log");
  const args = bin.endsWith("clickhouse-server")
    ? [`--config-file=${cfg.configFile}`]
    : ["server", `--config-file=${cfg.configFile}`];
  const pid = launch(pidName, bin, args, { cwd: cfg.dir, logFile });
  await waitReady(
    "clickhouse",
    pid,
    `${cfg.dir}/log/clickhouse-server.err.log`,
    () => clickhouseReady(addr),
    90_000,
  );
  return pid;
}

// ---------------------------------------------------------------- Redis

async function redisReady(addr) {
  try {
    return (await redisCommand(addr, "PING\r\n")) === "+PONG";
  } catch {
    return false;
  }
}

function redisAclRule() {
  const { username, password } = localCredentials().redis;
  return ["SETUSER", username, "on", `>${password}`, "~*", "&*", "+@all", "-@dangerous"];
}

async function redisUp(
  addr,
  { dir = path.join(home, "redis"), pidName = "redis", appendfsync = "everysec" } = {},
) {
  const bin = which("redis-server");
  if (!bin) {
    throw new StackError(
      "redis",
      "redis-server is not installed. Install it: apt-get update && apt-get install -y redis-server",
    );
  }
  fs.mkdirSync(dir, { recursive: true });
  const conf = [
    `bind ${addr.host}`,
    `port ${addr.port}`,
    "protected-mode yes",
    `dir ${dir}`,
    "appendonly yes",
    `appendfsync ${appendfsync}`,
    "daemonize no",
    `logfile ${path.join(dir, "redis.log")}`,
    "save 60 1000",
    // The default user stays open on loopback for local development; the
    // ACL user below is what the security tests authenticate as.
    redisAclRule()
      .join(" ")
      .replace(/^SETUSER/, "user"),
    "",
  ].join("\n");
  fs.writeFileSync(path.join(dir, "redis.conf"), conf, { mode: 0o600 });
  const logFile = path.join(dir, "redis.log");
  const pid = launch(pidName, bin, [path.join(dir, "redis.conf")], {
    cwd: dir,
    logFile: path.join(dir, "stdout.log"),
  });
  await waitReady("redis", pid, logFile, () => redisReady(addr), 30_000);
  return pid;
}

// ---------------------------------------------------------------- commands

const services = {
  kafka: { up: kafkaUp, ready: (a) => kafkaApiVersions(a) },
  // A running service this stack started gets its secured users brought up to
  // date (ClickHouse reloads users.xml by itself; Redis takes ACL SETUSER).
  clickhouse: { up: clickhouseUp, ready: clickhouseReady, refresh: (a) => clickhouseConfig(a) },
  redis: {
    up: redisUp,
    ready: redisReady,
    refresh: (a) => redisCommand(a, `ACL ${redisAclRule().join(" ")}\r\n`),
  },
};

async function version(name, addr) {
  try {
    if (name === "kafka") return KAFKA_VERSION;
    if (name === "clickhouse") {
      const r = await httpGet(
        `http://${addr.host}:${addr.port}/?query=${encodeURIComponent("SELECT version()")}`,
      );
      return r.body.trim();
    }
    if (name === "redis") {
      const info = await redisCommand(addr, "INFO server\r\n");
      return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
    }
  } catch {
    return "unknown";
  }
}

/** Starts every service not already answering; returns the names it started. */
export async function up({ only } = {}) {
  const addrs = addresses();
  const started = [];
  for (const [name, svc] of Object.entries(services)) {
    if (only && !only.includes(name)) continue;
    const addr = addrs[name];
    if (await svc.ready(addr)) {
      const pid = readPid(name);
      if (alive(pid)) await svc.refresh?.(addr);
      console.log(
        `[${name}] already running on ${addr.host}:${addr.port}${alive(pid) ? ` (pid ${pid})` : " (not started by this stack)"}`,
      );
      continue;
    }
    if (await tcpOpen(addr)) {
      throw new StackError(
        name,
        `port ${addr.port} is taken by ${listenerOf(addr.port)}, which does not answer as ${name}. Stop it or point SLUICE_${name.toUpperCase()}_* elsewhere.`,
      );
    }
    const stale = readPid(name);
    if (alive(stale)) {
      throw new StackError(
        name,
        `pid ${stale} from a previous start is alive but not answering on port ${addr.port}; run \`npm run stack:down\` first.`,
      );
    }
    const t0 = Date.now();
    const pid = await svc.up(addr);
    started.push(name);
    console.log(
      `[${name}] up on ${addr.host}:${addr.port} (pid ${pid}, ${((Date.now() - t0) / 1000).toFixed(1)}s)`,
    );
  }
  return started;
}

/** Signals the process group a service was launched in (detached), or the process alone. */
function signalTree(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}

async function stopPid(name, pid, timeoutMs = 30_000) {
  signalTree(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(200);
  if (alive(pid)) {
    console.log(`[${name}] did not stop within ${timeoutMs / 1000}s; sending SIGKILL`);
    signalTree(pid, "SIGKILL");
    while (alive(pid)) await sleep(100);
  }
}

/** Stops the services this stack started (pid files), newest dependency last. */
export async function down({ only } = {}) {
  for (const name of ["kafka", "clickhouse", "redis"]) {
    if (only && !only.includes(name)) continue;
    const pid = readPid(name);
    if (!pid) {
      console.log(`[${name}] not started by this stack`);
      continue;
    }
    if (alive(pid)) {
      await stopPid(name, pid);
      console.log(`[${name}] stopped (pid ${pid})`);
    } else {
      console.log(`[${name}] was not running (stale pid ${pid})`);
    }
    fs.rmSync(pidFile(name), { force: true });
  }
}

/** Reports each service: up/down, address, version and pid. Returns true when all are up. */
export async function status() {
  const addrs = addresses();
  let allUp = true;
  for (const [name, svc] of Object.entries(services)) {
    const addr = addrs[name];
    const ok = await svc.ready(addr);
    const pid = readPid(name);
    allUp &&= ok;
    const v = ok ? await version(name, addr) : undefined;
    console.log(
      `${name.padEnd(10)} ${ok ? "up  " : "down"} ${addr.host}:${addr.port}${v ? ` version ${v}` : ""}${alive(pid) ? ` pid ${pid}` : ""}`,
    );
  }
  return allUp;
}

export async function allReady() {
  const addrs = addresses();
  for (const [name, svc] of Object.entries(services)) {
    if (!(await svc.ready(addrs[name]))) return false;
  }
  return true;
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const only = rest.length ? rest : undefined;
  try {
    if (cmd === "up") await up({ only });
    else if (cmd === "down") await down({ only });
    else if (cmd === "status") process.exitCode = (await status()) ? 0 : 1;
    else {
      console.error("usage: stack.mjs up|down|status [kafka|clickhouse|redis ...]");
      process.exitCode = 2;
    }
  } catch (err) {
    console.error(err instanceof StackError ? err.message : err);
    process.exitCode = 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
