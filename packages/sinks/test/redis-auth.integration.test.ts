// The Redis sink against the local stack's ACL user: the right password
// writes; a wrong one fails the sink fast with a coded error that never
// carries the password — not in its message, nor in the failed AUTH command
// ioredis attaches to its error (what a logger printing the error shows).
import { inspect } from "node:util";
import { Redis } from "ioredis";
import { expect, it } from "vitest";
import { localCredentials } from "../../../scripts/stack.mjs";
import { createRedisSink, SinkError } from "../src/index.js";
import { env, uniqueName } from "./helpers.js";

const { username, password } = localCredentials().redis;

function urlWith(user: string, pass: string): string {
  const u = new URL(env.redisUrl);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(pass);
  return u.toString();
}

it("writes as the ACL user given in the URL", async () => {
  const prefix = `${uniqueName("auth")}:`;
  const sink = createRedisSink({
    url: urlWith(username, password),
    keyPrefix: prefix,
    write: "counter",
  });
  await sink.write([{ key: "n", value: 3, partition: 0, offset: 1 }]);
  await sink.flush();
  await sink.close();
  const admin = new Redis(env.redisUrl);
  try {
    expect(await admin.get(`${prefix}n`)).toBe("3");
    await admin.del(`${prefix}n`, `${prefix}fence:${prefix}counter:0`);
  } finally {
    admin.disconnect();
  }
});

it("fails fast with SINK_REJECTED (REDIS_WRONGPASS) on a wrong password and never carries it", async () => {
  const wrong = "wrong-redis-secret-77";
  const sink = createRedisSink({
    url: urlWith(username, wrong),
    keyPrefix: `${uniqueName("auth")}:`,
    write: "counter",
  });
  const t0 = Date.now();
  const err = await sink
    .write([{ key: "n", value: 1, partition: 0, offset: 1 }])
    .then(() => sink.flush())
    .catch((e: unknown) => e);
  expect(Date.now() - t0).toBeLessThan(15_000);
  await sink.close().catch(() => undefined);
  expect(err).toBeInstanceOf(SinkError);
  expect((err as SinkError).code).toBe("SINK_REJECTED");
  expect((err as SinkError).message).toMatch(/^redis sink .*\(REDIS_WRONGPASS\)/);
  const printed = inspect(err, { depth: 10 });
  expect(printed).toContain("[redacted]");
  expect(printed).not.toContain(wrong);
  expect(printed).not.toContain(password);
});
