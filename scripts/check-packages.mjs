#!/usr/bin/env node
// publint and @arethetypeswrong/cli over every published package (built first).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkgs = fs
  .readdirSync(path.join(root, "packages"))
  .filter((d) => fs.existsSync(path.join(root, "packages", d, "package.json")));
let failed = 0;
for (const dir of pkgs) {
  const before = failed;
  const cwd = path.join(root, "packages", dir);
  for (const [cmd, args] of [
    ["npx", ["publint", "--strict", "."]],
    ["npx", ["attw", "--pack", ".", "--format", "ascii", "--profile", "node16"]],
  ]) {
    const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
    if (r.status !== 0) {
      failed++;
      console.error(`@sluice/${dir}: ${args[0]} failed\n${r.stdout}${r.stderr}`);
    }
  }
  console.log(`@sluice/${dir}: ${failed > before ? "problems above" : "publint and attw clean"}`);
}
process.exit(failed ? 1 : 0);
