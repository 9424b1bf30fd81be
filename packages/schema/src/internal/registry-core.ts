import {
  type CompatibilityMode,
  type CompatibilityResult,
  checkCompatibility,
} from "../compatibility.js";
import { type JsonSchemaObject, schemaFingerprint } from "../define-schema.js";
import { SchemaError } from "../schema-error.js";
import type {
  RegisteredSchema,
  RegistryStatus,
  SchemaRef,
  SchemaRegistry,
} from "../schema-registry.js";
import { compileSchema } from "./ajv.js";

export interface StoredRecord {
  subject: string;
  id: number;
  fingerprint: string;
  schema: JsonSchemaObject;
}

/** Registry contents rebuilt from records in their storage order. */
export class RegistryState {
  readonly byId = new Map<number, StoredRecord & { firstSubject: string }>();
  readonly bySubject = new Map<string, RegisteredSchema[]>();
  readonly idByFingerprint = new Map<string, number>();
  maxId = 0;

  apply(r: StoredRecord): void {
    const known = this.byId.get(r.id);
    if (!known) {
      this.byId.set(r.id, { ...r, firstSubject: r.subject });
      this.idByFingerprint.set(r.fingerprint, r.id);
      this.maxId = Math.max(this.maxId, r.id);
    } else if (known.fingerprint !== r.fingerprint) {
      return; // id collision: the first writer keeps the id; register() detects it
    }
    const versions = this.bySubject.get(r.subject) ?? [];
    if (versions.some((v) => v.id === r.id)) return;
    versions.push({ id: r.id, subject: r.subject, version: versions.length + 1, schema: r.schema });
    this.bySubject.set(r.subject, versions);
  }

  records(): StoredRecord[] {
    const out: StoredRecord[] = [];
    for (const versions of this.bySubject.values()) {
      for (const v of versions) {
        out.push({
          subject: v.subject,
          id: v.id,
          fingerprint: this.byId.get(v.id)!.fingerprint,
          schema: v.schema,
        });
      }
    }
    return out;
  }
}

export interface RegistryBackend {
  kind: string;
  state: RegistryState;
  /** Brings `state` up to date with the storage. */
  sync(): Promise<void>;
  /** Appends a record to the storage (state is updated by the next sync). */
  write(record: StoredRecord): Promise<void>;
  /** Id for a schema not registered yet. */
  allocateId(fingerprint: string): number;
  close(): Promise<void>;
}

export function incompatibleError(subject: string, result: CompatibilityResult): SchemaError {
  const list = result.changes.map((c) => `${c.path} ${c.kind}: ${c.message}`).join("; ");
  return new SchemaError(
    "SCHEMA_INCOMPATIBLE",
    `schema is not compatible with the latest version of subject '${subject}': ${list}`,
    { subject, changes: result.changes },
  );
}

export function registryFailed(kind: string, what: string, cause: unknown): SchemaError {
  return new SchemaError(
    "SCHEMA_REGISTRY_FAILED",
    `${kind} schema registry could not ${what}: ${(cause as Error)?.message ?? String(cause)}`,
    { cause, retryable: true },
  );
}

export function checkRef(ref: SchemaRef): void {
  if (!ref || typeof ref.subject !== "string" || ref.subject.length === 0) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      "register needs { subject, jsonSchema } (an EventSchema from defineSchema fits)",
      { value: ref },
    );
  }
  try {
    compileSchema(ref.jsonSchema as object);
  } catch (cause) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      `schema of subject '${ref.subject}' does not compile (ajv strict, draft 2020-12): ${(cause as Error).message}`,
      { cause, subject: ref.subject, value: ref.jsonSchema },
    );
  }
}

/** A registry over a backend: serialized operations, compatibility, lifecycle. */
export function createRegistry(
  backend: RegistryBackend,
  mode: CompatibilityMode,
  opening: Promise<void>,
): SchemaRegistry {
  let status: RegistryStatus = "opening";
  let tail: Promise<unknown> = opening.then(
    () => {
      if (status === "opening") status = "open";
    },
    () => {
      // surfaced by the first operation's sync
    },
  );
  let closing: Promise<void> | undefined;

  const run = <R>(fn: () => Promise<R>): Promise<R> => {
    if (status === "closing" || status === "closed") {
      return Promise.reject(
        new SchemaError("SCHEMA_REGISTRY_CLOSED", `${backend.kind} schema registry is ${status}`),
      );
    }
    const next = tail.then(fn, fn);
    tail = next.catch(() => undefined);
    return next;
  };

  const sync = async () => {
    try {
      await backend.sync();
    } catch (cause) {
      if (SchemaError.isInstance(cause)) throw cause;
      throw registryFailed(backend.kind, "read its storage", cause);
    }
  };

  const latestOf = (subject: string): RegisteredSchema | undefined => {
    const versions = backend.state.bySubject.get(subject);
    return versions?.[versions.length - 1];
  };

  const registry: SchemaRegistry = {
    get status() {
      return status;
    },
    register(ref) {
      return run(async () => {
        checkRef(ref);
        await sync();
        const fingerprint = schemaFingerprint(ref.jsonSchema);
        const find = () =>
          backend.state.bySubject
            .get(ref.subject)
            ?.find((v) => backend.state.byId.get(v.id)?.fingerprint === fingerprint);
        let found = find();
        if (!found) {
          const latest = latestOf(ref.subject);
          if (latest && mode !== "NONE") {
            const result = checkCompatibility(latest.schema, ref.jsonSchema, mode);
            if (!result.compatible) throw incompatibleError(ref.subject, result);
          }
          const id =
            backend.state.idByFingerprint.get(fingerprint) ?? backend.allocateId(fingerprint);
          const holder = backend.state.byId.get(id);
          if (holder && holder.fingerprint !== fingerprint) {
            throw new SchemaError(
              "SCHEMA_REGISTRY_FAILED",
              `schema id ${id} is already taken by another schema (hash collision); change the schema text (for example its $comment)`,
              { subject: ref.subject },
            );
          }
          try {
            await backend.write({
              subject: ref.subject,
              id,
              fingerprint,
              schema: ref.jsonSchema,
            });
          } catch (cause) {
            throw registryFailed(backend.kind, "store the schema", cause);
          }
          await sync();
          found = find();
          if (!found) {
            throw new SchemaError(
              "SCHEMA_REGISTRY_FAILED",
              `${backend.kind} schema registry did not read back the schema it wrote for '${ref.subject}'`,
              { subject: ref.subject, retryable: true },
            );
          }
        }
        ref.id = found.id;
        return found;
      });
    },
    getById(id) {
      return run(async () => {
        await sync();
        const r = backend.state.byId.get(id);
        if (!r) {
          throw new SchemaError("SCHEMA_NOT_FOUND", `no schema with id ${id}`, { value: id });
        }
        const version =
          backend.state.bySubject.get(r.firstSubject)?.find((v) => v.id === id)?.version ?? 1;
        return { id, subject: r.firstSubject, version, schema: r.schema };
      });
    },
    latest(subject) {
      return run(async () => {
        await sync();
        const l = latestOf(subject);
        if (!l) {
          throw new SchemaError("SCHEMA_NOT_FOUND", `subject '${subject}' has no schema`, {
            subject,
          });
        }
        return l;
      });
    },
    checkCompatibility(ref) {
      return run(async () => {
        checkRef(ref);
        await sync();
        const l = latestOf(ref.subject);
        if (!l || mode === "NONE") return { compatible: true, changes: [] };
        return checkCompatibility(l.schema, ref.jsonSchema, mode);
      });
    },
    close() {
      if (!closing) {
        status = "closing";
        closing = tail
          .then(() => backend.close())
          .finally(() => {
            status = "closed";
          });
      }
      return closing;
    },
    [Symbol.asyncDispose]() {
      return registry.close();
    },
  };
  return registry;
}

export function validMode(mode: unknown): CompatibilityMode {
  const m = mode ?? "BACKWARD";
  if (m !== "BACKWARD" && m !== "FORWARD" && m !== "FULL" && m !== "NONE") {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      `compatibility must be BACKWARD, FORWARD, FULL or NONE; got ${JSON.stringify(mode)}`,
      { value: mode },
    );
  }
  return m;
}
