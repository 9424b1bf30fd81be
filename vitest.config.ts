import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests import `@sluice/<pkg>` from source, so a package's tests never need
// another package to be built first.
const packagesDir = fileURLToPath(new URL("./packages/", import.meta.url));
const alias = Object.fromEntries(
  readdirSync(packagesDir).map((dir) => [`@sluice/${dir}`, `${packagesDir}${dir}/src/index.ts`]),
);

// Two projects: `unit` needs nothing running; `integration` talks to the real
// local stack (Kafka, ClickHouse, Redis) started by `npm run stack:up`.
export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          include: ["packages/*/{src,test}/**/*.test.ts", "integration/{src,test}/**/*.test.ts"],
          exclude: ["**/*.integration.test.ts", "**/node_modules/**", "**/dist/**"],
          environment: "node",
          testTimeout: 30_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "integration",
          include: [
            "packages/*/{src,test}/**/*.integration.test.ts",
            "integration/test/**/*.integration.test.ts",
          ],
          exclude: ["**/node_modules/**", "**/dist/**"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Integration suites share one broker on a 2-core machine: keep
          // file-level parallelism low so timeouts reflect bugs, not load.
          maxWorkers: 2,
          minWorkers: 1,
        },
      },
    ],
  },
});
