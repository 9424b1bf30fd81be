#!/usr/bin/env node
// `npm run bench -- <suite> [args]` runs bench/suites/<suite>.ts with tsx
// against the local stack (started when not running, stopped afterwards).
// `npm run bench -- all` runs every suite in turn.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const suitesDir = path.join(root, "bench", "suites");
const available = fs
  .readdirSync(suitesDir)
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .sort();
const [suite, ...rest] = process.argv.slice(2);
if (!suite || (suite !== "all" && !available.includes(suite))) {
  console.error(`usage: npm run bench -- <suite> [options]\nsuites: ${available.join(", ")}, all`);
  process.exit(2);
}
const stack = await import("./stack.mjs");
let started = [];
try {
  started = await stack.up();
} catch (err) {
  console.error(err?.message ?? err);
  process.exit(1);
}
let status = 0;
try {
  for (const name of suite === "all" ? available : [suite]) {
    console.log(`\n=== bench ${name}`);
    const r = spawnSync("npx", ["tsx", path.join(suitesDir, `${name}.ts`), ...rest], {
      cwd: root,
      stdio: "inherit",
      // Resolve @sluice/* to the packages' TypeScript sources (tsconfig
      // paths), so a suite runs on a fresh clone without a build first.
      env: { TSX_TSCONFIG_PATH: path.join(root, "tsconfig.base.json"), ...process.env },
    });
    if (r.status !== 0) status = r.status ?? 1;
  }
} finally {
  if (started.length) await stack.down({ only: started });
}
process.exit(status);
