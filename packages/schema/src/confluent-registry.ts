import type { CompatibilityResult } from "./compatibility.js";
import type { JsonSchemaObject } from "./define-schema.js";
import { checkRef, incompatibleError } from "./internal/registry-core.js";
import { SchemaError } from "./schema-error.js";
import type { RegisteredSchema, RegistryStatus, SchemaRegistry } from "./schema-registry.js";

/**
 * Options of {@link createConfluentRegistry}.
 *
 * @since 0.1.0
 */
export interface ConfluentRegistryOptions {
  /** Base URL of a Confluent-compatible registry, for example `http://127.0.0.1:8081`. */
  url: string;
  /** Basic auth credentials, if the registry needs them. */
  auth?: { username: string; password: string };
  /** Extra request headers. @defaultValue {} */
  headers?: Record<string, string>;
  /** Timeout of each request in milliseconds. @defaultValue 10000 */
  timeoutMs?: number;
  /** `fetch` implementation. @defaultValue the global `fetch` */
  fetch?: typeof fetch;
}

const CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

interface HttpError {
  status: number;
  errorCode?: number;
  message: string;
}

/**
 * A client for Confluent-compatible schema registries (REST API,
 * `schemaType: "JSON"`). Compatibility is decided by the server (its mode for
 * the subject); the changes it reports are returned as `changes`.
 *
 * @param options - URL, auth, timeout
 * @returns the registry client
 * @throws SchemaError `SCHEMA_INVALID_DEFINITION` when the URL is invalid
 * @example
 * ```ts
 * const registry = createConfluentRegistry({ url: 'http://registry:8081' });
 * await registry.register(UserEvent); // POST /subjects/user-event/versions
 * ```
 * @since 0.1.0
 */
export function createConfluentRegistry(options: ConfluentRegistryOptions): SchemaRegistry {
  let base: URL;
  try {
    base = new URL(options.url.endsWith("/") ? options.url : `${options.url}/`);
  } catch (cause) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      `url must be an http(s) URL; got ${JSON.stringify(options?.url)}`,
      { cause, value: options?.url },
    );
  }
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const headers: Record<string, string> = {
    accept: CONTENT_TYPE,
    "content-type": CONTENT_TYPE,
    ...options.headers,
  };
  if (options.auth) {
    headers.authorization = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString("base64")}`;
  }
  let status: RegistryStatus = "open";
  const inFlight = new Set<AbortController>();

  async function call<R>(method: string, path: string, body?: unknown): Promise<R> {
    if (status !== "open") {
      throw new SchemaError(
        "SCHEMA_REGISTRY_CLOSED",
        `Confluent schema registry client is ${status}`,
      );
    }
    const controller = new AbortController();
    inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let res: Response;
    try {
      res = await doFetch(new URL(path, base), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (cause) {
      throw new SchemaError(
        "SCHEMA_REGISTRY_FAILED",
        `Confluent schema registry at ${base.origin} did not answer ${method} /${path}: ${(cause as Error)?.message ?? String(cause)}`,
        { cause, retryable: true },
      );
    } finally {
      clearTimeout(timer);
      inFlight.delete(controller);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json as { error_code?: number; message?: string } | undefined;
      const err: HttpError = {
        status: res.status,
        errorCode: e?.error_code,
        message: e?.message ?? text.slice(0, 200),
      };
      throw err;
    }
    return json as R;
  }

  const toSchemaError = (err: unknown, what: string, subject?: string): SchemaError => {
    if (SchemaError.isInstance(err)) return err;
    const e = err as HttpError;
    if (e.status === 404) {
      return new SchemaError("SCHEMA_NOT_FOUND", `${what}: ${e.message}`, { subject });
    }
    return new SchemaError(
      "SCHEMA_REGISTRY_FAILED",
      `${what}: HTTP ${e.status}${e.errorCode ? ` (${e.errorCode})` : ""} ${e.message}`,
      { subject, retryable: e.status >= 500 || e.status === 429 },
    );
  };

  const seg = encodeURIComponent;

  const parseSchema = (text: string): JsonSchemaObject => JSON.parse(text) as JsonSchemaObject;

  async function compatibility(
    subject: string,
    schema: JsonSchemaObject,
  ): Promise<CompatibilityResult> {
    try {
      const r = await call<{ is_compatible: boolean; messages?: string[] }>(
        "POST",
        `compatibility/subjects/${seg(subject)}/versions/latest?verbose=true`,
        { schema: JSON.stringify(schema), schemaType: "JSON" },
      );
      const changes = (r.messages ?? []).map((message) => ({
        path: "/",
        kind: "server-reported",
        breaks: "BACKWARD" as const,
        message,
      }));
      return { compatible: r.is_compatible, changes: r.is_compatible ? [] : changes };
    } catch (err) {
      const e = err as HttpError;
      if (e.status === 404) return { compatible: true, changes: [] };
      throw toSchemaError(err, `compatibility check for '${subject}' failed`, subject);
    }
  }

  const registry: SchemaRegistry = {
    get status() {
      return status;
    },
    async register(ref) {
      checkRef(ref);
      const body = { schema: JSON.stringify(ref.jsonSchema), schemaType: "JSON" };
      try {
        await call<{ id: number }>("POST", `subjects/${seg(ref.subject)}/versions`, body);
      } catch (err) {
        const e = err as HttpError;
        if (e.status === 409) {
          const result = await compatibility(ref.subject, ref.jsonSchema);
          throw incompatibleError(ref.subject, {
            compatible: false,
            changes: result.changes.length
              ? result.changes
              : [{ path: "/", kind: "server-reported", breaks: "BACKWARD", message: e.message }],
          });
        }
        throw toSchemaError(err, `registering under '${ref.subject}' failed`, ref.subject);
      }
      try {
        const found = await call<{ id: number; version: number; subject: string }>(
          "POST",
          `subjects/${seg(ref.subject)}`,
          body,
        );
        ref.id = found.id;
        return {
          id: found.id,
          subject: ref.subject,
          version: found.version,
          schema: ref.jsonSchema,
        };
      } catch (err) {
        throw toSchemaError(err, `looking up '${ref.subject}' failed`, ref.subject);
      }
    },
    async getById(id) {
      try {
        const r = await call<{ schema: string }>("GET", `schemas/ids/${seg(String(id))}`);
        let subject = "";
        let version = 1;
        try {
          const versions = await call<Array<{ subject: string; version: number }>>(
            "GET",
            `schemas/ids/${seg(String(id))}/versions`,
          );
          subject = versions[0]?.subject ?? "";
          version = versions[0]?.version ?? 1;
        } catch {
          // older registries lack this endpoint: subject stays unknown
        }
        return { id, subject, version, schema: parseSchema(r.schema) };
      } catch (err) {
        throw toSchemaError(err, `no schema with id ${id}`);
      }
    },
    async latest(subject): Promise<RegisteredSchema> {
      try {
        const r = await call<{ id: number; version: number; schema: string; subject: string }>(
          "GET",
          `subjects/${seg(subject)}/versions/latest`,
        );
        return { id: r.id, subject, version: r.version, schema: parseSchema(r.schema) };
      } catch (err) {
        throw toSchemaError(err, `subject '${subject}' has no schema`, subject);
      }
    },
    async checkCompatibility(ref) {
      checkRef(ref);
      return compatibility(ref.subject, ref.jsonSchema);
    },
    async close() {
      if (status === "closed") return;
      status = "closed";
      for (const c of inFlight) c.abort();
    },
    [Symbol.asyncDispose]() {
      return registry.close();
    },
  };
  return registry;
}
