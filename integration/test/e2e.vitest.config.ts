import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `npm run test:e2e`: the end-to-end fault suite, on private services it
// starts itself. Kept out of the `unit` and `integration` projects (its files
// end in `.e2e.ts`) because it runs for several minutes on its own.
const root = fileURLToPath(new URL("../..", import.meta.url));
const packagesDir = `${root}packages/`;
const alias = Object.fromEntries(
  readdirSync(packagesDir).map((dir) => [`@sluice/${dir}`, `${packagesDir}${dir}/src/index.ts`]),
);

export default defineConfig({
  root,
  resolve: { alias },
  test: {
    name: "e2e",
    include: ["integration/test/e2e*.e2e.ts"],
    environment: "node",
    testTimeout: 22 * 60_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
