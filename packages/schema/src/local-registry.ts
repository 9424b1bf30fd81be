import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  createRegistry,
  RegistryState,
  type StoredRecord,
  validMode,
} from "./internal/registry-core.js";
import type { RegistryOptions, SchemaRegistry } from "./schema-registry.js";

/**
 * Options of {@link createLocalRegistry}.
 *
 * @since 0.1.0
 */
export interface LocalRegistryOptions extends RegistryOptions {
  /**
   * Directory where the registry keeps `sluice-schemas.json`; in memory only
   * when omitted. One process at a time per directory.
   */
  dir?: string;
}

const FILE = "sluice-schemas.json";

/**
 * A schema registry in memory, optionally persisted to a directory — for
 * tests and embedded runs. Ids are sequential from 1; the same schema text
 * always gets the same id.
 *
 * @param options - directory and compatibility mode
 * @defaultValue compatibility `'BACKWARD'`
 * @returns the registry
 * @throws SchemaError `SCHEMA_INVALID_DEFINITION` for an invalid compatibility mode
 * @example
 * ```ts
 * await using registry = createLocalRegistry({ dir: './schemas' });
 * await registry.register(UserEvent); // UserEvent.id is now set
 * ```
 * @since 0.1.0
 */
export function createLocalRegistry(options: LocalRegistryOptions = {}): SchemaRegistry {
  const mode = validMode(options.compatibility);
  const state = new RegistryState();
  const dir = options.dir;
  const file = dir ? path.join(dir, FILE) : undefined;
  const opening = (async () => {
    if (!file) return;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    for (const r of JSON.parse(text).records as StoredRecord[]) state.apply(r);
  })();
  let openError: unknown;
  opening.catch((err) => {
    openError = err;
  });
  return createRegistry(
    {
      kind: "local",
      state,
      async sync() {
        await opening.catch(() => undefined);
        if (openError) throw openError;
      },
      async write(record) {
        state.apply(record);
        if (!file || !dir) return;
        await mkdir(dir, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, `${JSON.stringify({ records: state.records() }, null, 2)}\n`);
        await rename(tmp, file);
      },
      allocateId() {
        return state.maxId + 1;
      },
      async close() {},
    },
    mode,
    opening,
  );
}
