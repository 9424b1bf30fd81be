// The deployment files cannot run here (no container engine, no cluster), so
// this checks what can be checked: the compose file agrees with the local stack
// and the env vars the code reads, and every Kubernetes manifest validates
// against the Kubernetes OpenAPI schemas (kubernetes-models).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

const here = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const read = (p: string) => readFileSync(here(p), "utf8");

interface ComposeService {
  image?: string;
  build?: unknown;
  ports?: string[];
  environment?: Record<string, string>;
  depends_on?: unknown;
  volumes?: string[];
  command?: string[];
}

const compose = parse(read("docker-compose.yml"), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};

function hostPorts(s: ComposeService): number[] {
  return (s.ports ?? []).map((p) => Number(String(p).split(":")[0]));
}

describe("docker-compose.yml", () => {
  it("runs the stack, the two services, Prometheus and Grafana", () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ["aggregator", "clickhouse", "grafana", "kafka", "producer", "prometheus", "redis"].sort(),
    );
    expect(compose.services.kafka!.image).toMatch(/^apache\/kafka:3\.9/);
  });

  it("publishes the local stack's ports, which are the SLUICE_* defaults in src/env.ts", () => {
    expect(hostPorts(compose.services.kafka!)).toEqual([9092]);
    expect(hostPorts(compose.services.clickhouse!)).toEqual([8123]);
    expect(hostPorts(compose.services.redis!)).toEqual([6379]);
    const envSource = read("src/env.ts");
    expect(envSource).toContain('"127.0.0.1:9092"');
    expect(envSource).toContain('"http://127.0.0.1:8123"');
    expect(envSource).toContain('"redis://127.0.0.1:6379"');
  });

  it("configures producer and aggregator with the env vars the code reads, pointing at compose services", () => {
    const envSource = read("src/env.ts");
    for (const name of ["producer", "aggregator"]) {
      const env = compose.services[name]!.environment!;
      for (const v of ["SLUICE_KAFKA_BROKERS", "SLUICE_CLICKHOUSE_URL", "SLUICE_REDIS_URL"]) {
        expect(envSource).toContain(`process.env.${v}`);
        expect(env[v], `${name}.${v}`).toBeTypeOf("string");
      }
      const [kafkaHost, kafkaPort] = env.SLUICE_KAFKA_BROKERS!.split(":");
      expect(compose.services[kafkaHost!]).toBeDefined();
      expect(compose.services.kafka!.environment).toBeDefined();
      expect(
        String(compose.services.kafka!.environment!.KAFKA_LISTENERS).includes(`:${kafkaPort}`),
      ).toBe(true);
      expect(new URL(env.SLUICE_CLICKHOUSE_URL!).hostname).toBe("clickhouse");
      expect(new URL(env.SLUICE_REDIS_URL!).hostname).toBe("redis");
      expect(env.SLUICE_METRICS_PORT).toBe("9464");
      // Prometheus scrapes from another container: bind every interface.
      expect(env.SLUICE_METRICS_HOST).toBe("0.0.0.0");
    }
  });

  it("scrapes both services from Prometheus and provisions Grafana from the repo", () => {
    const prom = parse(read("prometheus/prometheus.yml")) as {
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(["aggregator:9464", "producer:9464"]);
    const grafana = compose.services.grafana!;
    expect(grafana.volumes!.some((v) => v.startsWith("./grafana/provisioning:"))).toBe(true);
    const ds = parse(read("grafana/provisioning/datasources/prometheus.yml")) as {
      datasources: Array<{ url: string }>;
    };
    expect(ds.datasources[0]!.url).toBe("http://prometheus:9090");
    const dashboards = parse(read("grafana/provisioning/dashboards/sluice.yml")) as {
      providers: Array<{ options: { path: string } }>;
    };
    const mount = grafana.volumes!.find((v) => v.startsWith("./observability:"))!;
    expect(mount.split(":")[1]).toBe(dashboards.providers[0]!.options.path);
  });

  it("loads the shipped alert rules into Prometheus from the file it mounts", () => {
    const prom = parse(read("prometheus/prometheus.yml")) as { rule_files: string[] };
    const volumes = compose.services.prometheus!.volumes!;
    for (const ruleFile of prom.rule_files) {
      const mount = volumes.find((v) => v.split(":")[1] === ruleFile);
      expect(mount, `a volume mounting ${ruleFile}`).toBeDefined();
      const local = mount!.split(":")[0]!.replace(/^\.\//, "");
      const rules = parse(read(local)) as { groups: Array<{ rules: unknown[] }> };
      expect(rules.groups.flatMap((g) => g.rules).length).toBeGreaterThan(0);
    }
    expect(prom.rule_files.length).toBeGreaterThan(0);
  });

  it("keeps the aggregator's state on a named volume", () => {
    const agg = compose.services.aggregator!;
    const stateDir = agg.environment!.SLUICE_STATE_DIR!;
    expect(agg.volumes!.some((v) => v.endsWith(`:${stateDir}`))).toBe(true);
    expect(Object.keys(compose.volumes)).toContain("aggregator-state");
  });
});

interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML
  spec?: any;
  data?: Record<string, string>;
}

function loadManifests(file: string): K8sDoc[] {
  return parseAllDocuments(read(`k8s/${file}`)).map((d) => d.toJS() as K8sDoc);
}

const models: Record<string, new (doc: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
};

function validate(doc: K8sDoc): void {
  const Model = models[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc as never).validate();
}

describe("k8s manifests", () => {
  const kustomization = parse(read("k8s/kustomization.yaml")) as { resources: string[] };
  const docs = kustomization.resources.flatMap(loadManifests);
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);

  it("validate against the Kubernetes schemas", () => {
    expect(docs.length).toBeGreaterThanOrEqual(6);
    for (const doc of docs) validate(doc);
  });

  it("the validator does catch a broken manifest", () => {
    const broken = structuredClone(byKind("StatefulSet")[0]!);
    broken.spec.replicas = "two";
    expect(() => validate(broken)).toThrow(/replicas/);
    const noImage = structuredClone(byKind("Deployment")[0]!);
    delete noImage.spec.template.spec.containers[0].name;
    expect(() => validate(noImage)).toThrow(/name/);
  });

  it("run the aggregator as a StatefulSet with a state volume and the producer as a Deployment", () => {
    const [sts] = byKind("StatefulSet");
    const [deploy] = byKind("Deployment");
    expect(sts!.metadata.name).toBe("sluice-aggregator");
    expect(deploy!.metadata.name).toBe("sluice-producer");
    const mount = sts!.spec.template.spec.containers[0].volumeMounts[0];
    expect(sts!.spec.volumeClaimTemplates[0].metadata.name).toBe(mount.name);
    const cm = byKind("ConfigMap")[0]!;
    expect(cm.data!.SLUICE_STATE_DIR).toBe(mount.mountPath);
  });

  it("probe /healthz and /readyz and read config from the ConfigMap", () => {
    const cm = byKind("ConfigMap")[0]!;
    for (const v of ["SLUICE_KAFKA_BROKERS", "SLUICE_CLICKHOUSE_URL", "SLUICE_REDIS_URL"]) {
      expect(cm.data![v]).toBeTypeOf("string");
    }
    expect(cm.data!.SLUICE_METRICS_HOST).toBe("0.0.0.0");
    for (const w of [...byKind("StatefulSet"), ...byKind("Deployment")]) {
      const c = w.spec.template.spec.containers[0];
      expect(c.livenessProbe.httpGet.path).toBe("/healthz");
      expect(c.readinessProbe.httpGet.path).toBe("/readyz");
      expect(c.envFrom[0].configMapRef.name).toBe(cm.metadata.name);
      expect(String(c.ports[0].containerPort)).toBe(cm.data!.SLUICE_METRICS_PORT);
    }
  });

  it("protect the aggregator with a PodDisruptionBudget matching its pods", () => {
    const [pdb] = byKind("PodDisruptionBudget");
    const [sts] = byKind("StatefulSet");
    expect(pdb!.spec.selector.matchLabels).toEqual(sts!.spec.selector.matchLabels);
    expect(pdb!.spec.maxUnavailable).toBe(1);
  });
});
