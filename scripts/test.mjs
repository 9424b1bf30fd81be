#!/usr/bin/env node
// `npm test`: everything a fresh clone needs, in order.
//   1. install dependencies when node_modules is missing or stale, and make sure
//      the native modules load (npm 11 may skip install scripts);
//   2. build every package, lint, typecheck, publint + are-the-types-wrong;
//   3. unit tests;
//   4. start the local stack when it is not already running, run the
//      integration suites against it, stop what was started;
//   5. the end-to-end fault suite (`npm run test:e2e`), on private services
//      it starts and stops itself (with `--e2e`; see E2E_IN_DEFAULT_RUN).
// Ends with one line `sluice: N passed, N failed, N skipped`.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);

const args = new Set(process.argv.slice(2));
const only = args.has("--unit")
  ? "unit"
  : args.has("--integration")
    ? "integration"
    : args.has("--e2e")
      ? "e2e"
      : undefined;

function step(title) {
  console.log(`\n=== ${title}`);
}

function run(cmd, cmdArgs, { allowFail = false, env } = {}) {
  const r = spawnSync(cmd, cmdArgs, { stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0 && !allowFail) {
    console.error(`\n${cmd} ${cmdArgs.join(" ")} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
  return r.status ?? 1;
}

function needsInstall() {
  const lock = path.join(root, "package-lock.json");
  const marker = path.join(root, "node_modules", ".package-lock.json");
  if (!fs.existsSync(marker)) return true;
  return fs.statSync(lock).mtimeMs > fs.statSync(marker).mtimeMs + 1000;
}

const nativeModules = ["classic-level", "chdb", "zstd-napi", "lz4-napi"];

function nativeLoads(name) {
  const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(name)})`], {
    cwd: path.join(root, "integration"),
    encoding: "utf8",
  });
  return r.status === 0 ? undefined : r.stderr.split("\n").slice(0, 5).join("\n");
}

function ensureNative() {
  for (const name of nativeModules) {
    if (!fs.existsSync(path.join(root, "node_modules", name))) continue;
    let error = nativeLoads(name);
    if (error) {
      console.log(`${name} does not load; rebuilding it (npm rebuild ${name})`);
      run("npm", ["rebuild", name, "--foreground-scripts"], { allowFail: true });
      error = nativeLoads(name);
      if (error) {
        console.error(`${name} still does not load after npm rebuild:\n${error}`);
        process.exit(1);
      }
    }
  }
}

// `project` is a project of vitest.config.ts, or "e2e" (its own config).
function vitest(project) {
  const out = path.join(root, ".sluice", `vitest-${project}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  const select =
    project === "e2e"
      ? ["--config", "integration/test/e2e.vitest.config.ts"]
      : ["--project", project];
  const status = run(
    "npx",
    [
      "vitest",
      "run",
      ...select,
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${out}`,
    ],
    { allowFail: true },
  );
  let totals = { passed: 0, failed: 0, skipped: 0 };
  try {
    const j = JSON.parse(fs.readFileSync(out, "utf8"));
    // A file that fails to load has no test results of its own: count it once.
    const brokenFiles = (j.testResults ?? []).filter(
      (f) => f.status === "failed" && (f.assertionResults ?? []).length === 0,
    ).length;
    totals = {
      passed: j.numPassedTests,
      failed: j.numFailedTests + brokenFiles,
      skipped: j.numPendingTests + j.numTodoTests,
    };
    // A suite that fails to load has no failed tests but must count as a failure.
    if (status !== 0 && totals.failed === 0) totals.failed = 1;
  } catch {
    if (status !== 0) totals.failed = 1;
  }
  return { status, totals };
}

const t0 = Date.now();

step("dependencies");
if (needsInstall()) run("npm", ["ci", "--no-audit", "--no-fund"]);
else console.log("node_modules is up to date");
ensureNative();

if (!only) {
  step("build");
  run("npm", ["run", "build", "--silent"]);
  step("lint (biome)");
  run("npx", ["biome", "ci", "--colors=off", "."]);
  step("typecheck");
  run("npm", ["run", "typecheck", "--workspaces", "--if-present", "--silent"]);
  step("package checks (publint, attw)");
  run("node", ["scripts/check-packages.mjs"]);
}

const results = [];
if (!only || only === "unit") {
  step("unit tests");
  results.push(vitest("unit"));
}

if (!only || only === "integration") {
  step("local stack");
  const stack = await import("./stack.mjs");
  let started = [];
  try {
    started = await stack.up();
    if (started.length === 0) console.log("local stack already running; leaving it running");
  } catch (err) {
    console.error(err?.message ?? err);
    if (started.length) await stack.down({ only: started });
    process.exit(1);
  }
  try {
    step("integration tests");
    results.push(vitest("integration"));
  } finally {
    if (started.length) {
      step("stopping what this run started");
      await stack.down({ only: started });
    }
  }
}

// The end-to-end fault suite: 300,000 events through kills, a broker restart,
// outages and scaling, 6-8 minutes on a loaded 2-core machine (its own
// budget is 18 minutes, after which it fails and stops everything it started).
// `npm test -- --e2e` (or `npm run test:e2e`) runs it alone; a failing run
// keeps every aggregator's output and trace in the log directory it prints.
// Part of the default run (integration/README.md, "End-to-end fault suite").
const E2E_IN_DEFAULT_RUN = true;

if (only === "e2e" || (!only && E2E_IN_DEFAULT_RUN)) {
  // Private Kafka, ClickHouse and Redis on free ports: independent of the stack above.
  step("end-to-end fault suite");
  results.push(vitest("e2e"));
}

const sum = results.reduce(
  (a, r) => ({
    passed: a.passed + r.totals.passed,
    failed: a.failed + r.totals.failed,
    skipped: a.skipped + r.totals.skipped,
  }),
  { passed: 0, failed: 0, skipped: 0 },
);
const failed = results.some((r) => r.status !== 0) || sum.failed > 0;
console.log(`\n(total ${((Date.now() - t0) / 1000).toFixed(0)}s)`);
console.log(`sluice: ${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped`);
process.exit(failed ? 1 : 0);
