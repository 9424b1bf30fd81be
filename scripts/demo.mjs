#!/usr/bin/env node
// `npm run demo [-- --events N --seed S --stop]`: the reference pipeline end to end.
//
// A thin launcher: when no SLUICE_* address is given it starts the local stack
// (scripts/stack.mjs) if it is not already running, then runs
// integration/src/bin/demo.ts with tsx, which creates topics and tables,
// produces the events, runs the aggregator to completion and prints the report.
// The stack is left running so the tables, keys and dashboards can be looked at;
// `--stop` stops what this run started (otherwise: npm run stack:down).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);

const args = process.argv.slice(2);
const stop = args.includes("--stop");
const passArgs = args.filter((a) => a !== "--stop");
const external = ["SLUICE_KAFKA_BROKERS", "SLUICE_CLICKHOUSE_URL", "SLUICE_REDIS_URL"].filter(
  (v) => process.env[v],
);

if (!fs.existsSync(path.join(root, "node_modules", "tsx"))) {
  console.error("Dependencies are not installed. Run `npm ci` in the repository root first.");
  process.exit(1);
}

let started = [];
let stack;
if (external.length === 0) {
  stack = await import("./stack.mjs");
  console.log("Local stack (Kafka, ClickHouse, Redis on 127.0.0.1):");
  try {
    started = await stack.up();
  } catch (err) {
    console.error(`\nThe local stack could not start:\n${err?.message ?? err}`);
    console.error(
      "\nFix the problem above and run `npm run demo` again, or point the demo at running" +
        " services with SLUICE_KAFKA_BROKERS, SLUICE_CLICKHOUSE_URL and SLUICE_REDIS_URL.",
    );
    process.exit(1);
  }
} else {
  console.log(`Using the services given by ${external.join(", ")}; not starting the local stack.`);
}

// node --import tsx rather than the tsx wrapper, so signals reach the demo itself.
const child = spawn(
  process.execPath,
  ["--import", "tsx", path.join("integration", "src", "bin", "demo.ts"), ...passArgs],
  {
    stdio: "inherit",
    // Resolve @sluice/* to the packages' TypeScript sources (tsconfig paths),
    // so the demo runs on a fresh clone without building the packages first.
    env: { TSX_TSCONFIG_PATH: path.join("integration", "tsconfig.json"), ...process.env },
  },
);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
const code = await new Promise((resolve) => {
  child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});

if (started.length > 0) {
  if (stop) {
    console.log("\nStopping what this run started ...");
    await stack.down({ only: started });
  } else {
    console.log(
      `\nThis run started ${started.join(", ")}; they keep running. Stop them with \`npm run stack:down\`.`,
    );
  }
}
process.exit(code);
