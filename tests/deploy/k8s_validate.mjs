// Validates every manifest under deploy/k8s offline against the Kubernetes
// 1.27 API schemas shipped by kubernetes-models (pinned in
// package-lock.json): each overlay as kustomize renders it, and each file
// that is not a kustomization or a patch. Then checks what the deployment
// relies on: probes and resources on every container, placeholder-only
// Secrets, the access table encoded by the NetworkPolicies, and that every
// CERROJO_* variable a container gets is one that a cerrojo binary reads
// (the names `BUILD_DIR/bin/cerrojo-<service> --help` lists). A manifest
// under k8s-invalid/ must fail validation.
//
// Usage: node k8s_validate.mjs SOURCE_DIR BUILD_DIR
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

const source = process.argv[2];
const build = process.argv[3];
const k8sDir = join(source, "deploy/k8s");
const invalidDir = join(source, "tests/deploy/k8s-invalid");
const failures = [];
const fail = (message) => failures.push(message);

function parseManifests(text, origin) {
  const docs = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      fail(`${origin}: YAML error: ${doc.errors[0].message}`);
      continue;
    }
    const object = doc.toJS();
    if (object !== null && object !== undefined) docs.push(object);
  }
  return docs;
}

// Returns the error message, or null when the object is valid.
async function validate(object) {
  const [group, version] = object.apiVersion.includes("/")
    ? object.apiVersion.split("/")
    : [null, object.apiVersion];
  const path = group === null
    ? `kubernetes-models/${version}/${object.kind}`
    : `kubernetes-models/${group}/${version}/${object.kind}`;
  let model;
  try {
    model = (await import(path))[object.kind];
  } catch {
    return `no schema for ${object.apiVersion} ${object.kind}`;
  }
  try {
    new model(object).validate();
    return null;
  } catch (error) {
    return error.message;
  }
}

function yamlFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

function render(overlay) {
  return execFileSync("kubectl", ["kustomize", overlay], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60000,
  });
}

// The policies of ../stores, which run in the data namespace.
const storePolicies = parseManifests(
  readFileSync(join(k8sDir, "stores/networkpolicies.yaml"), "utf8"), "stores");

// --- schemas --------------------------------------------------------------
const rendered = {};
for (const overlay of ["dev", "prod"]) {
  const dir = join(k8sDir, "overlays", overlay);
  try {
    rendered[overlay] = parseManifests(render(dir), `overlay ${overlay}`);
  } catch (error) {
    fail(`overlay ${overlay}: kubectl kustomize failed: ${error.stderr ?? error.message}`);
    rendered[overlay] = [];
  }
}
let checked = 0;
for (const [overlay, objects] of Object.entries(rendered)) {
  for (const object of objects) {
    const error = await validate(object);
    checked++;
    if (error) fail(`overlay ${overlay}: ${object.kind} ${object.metadata?.name}: ${error}`);
  }
}
for (const file of yamlFiles(k8sDir)) {
  if (/kustomization\.yaml$|patches\.yaml$/.test(file)) continue;
  for (const object of parseManifests(readFileSync(file, "utf8"), file)) {
    const error = await validate(object);
    checked++;
    if (error) fail(`${file}: ${object.kind} ${object.metadata?.name}: ${error}`);
  }
}
for (const file of yamlFiles(invalidDir)) {
  for (const object of parseManifests(readFileSync(file, "utf8"), file)) {
    if ((await validate(object)) === null) {
      fail(`${file}: the deliberately invalid ${object.kind} passed validation`);
    }
  }
}

// --- what the deployment relies on ------------------------------------------
const GRPC_SERVICES = ["kms", "session", "auth"];
for (const [overlay, objects] of Object.entries(rendered)) {
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const deployments = byKind("Deployment");
  if (deployments.length !== 4) fail(`overlay ${overlay}: ${deployments.length} Deployments, expected 4`);
  for (const d of deployments) {
    const name = d.metadata.name.replace(/^cerrojo-/, "");
    for (const c of d.spec.template.spec.containers) {
      for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        const p = c[probe];
        if (!p) {
          fail(`overlay ${overlay}: ${d.metadata.name}: no ${probe}`);
        } else if (GRPC_SERVICES.includes(name)) {
          const command = p.exec?.command ?? [];
          if (command[0] !== `cerrojo-${name}` || command[1] !== "healthcheck") {
            fail(`overlay ${overlay}: ${d.metadata.name}: ${probe} must run cerrojo-${name} healthcheck`);
          }
        } else if (!p.httpGet) {
          fail(`overlay ${overlay}: ${d.metadata.name}: ${probe} must be an HTTP probe`);
        }
      }
      for (const kind of ["requests", "limits"]) {
        for (const resource of ["cpu", "memory"]) {
          if (!c.resources?.[kind]?.[resource]) {
            fail(`overlay ${overlay}: ${d.metadata.name}: no ${kind}.${resource}`);
          }
        }
      }
      if (c.securityContext?.readOnlyRootFilesystem !== true) {
        fail(`overlay ${overlay}: ${d.metadata.name}: root filesystem not read-only`);
      }
    }
    if (d.spec.template.spec.securityContext?.runAsNonRoot !== true) {
      fail(`overlay ${overlay}: ${d.metadata.name}: runAsNonRoot is not set`);
    }
  }
  for (const name of ["gateway", "auth"]) {
    if (!byKind("HorizontalPodAutoscaler").some((h) => h.spec.scaleTargetRef.name === `cerrojo-${name}`)) {
      fail(`overlay ${overlay}: no HorizontalPodAutoscaler for cerrojo-${name}`);
    }
  }
  for (const d of deployments) {
    if (!byKind("PodDisruptionBudget").some((p) => p.metadata.name === d.metadata.name)) {
      fail(`overlay ${overlay}: no PodDisruptionBudget for ${d.metadata.name}`);
    }
    if (!byKind("Service").some((s) => s.metadata.name === d.metadata.name)) {
      fail(`overlay ${overlay}: no Service for ${d.metadata.name}`);
    }
  }
  const commands = byKind("CronJob").map((c) =>
    c.spec.jobTemplate.spec.template.spec.containers[0].command.join(" "));
  for (const expected of ["cerrojo-auth cleanup", "cerrojo-auth rewrap-keys",
    "cerrojo-kms rotate hpke", "cerrojo-kms rotate signing", "cerrojo-kms promote",
    "cerrojo-kms destroy-expired"]) {
    if (!commands.some((c) => c.includes(expected))) fail(`overlay ${overlay}: no CronJob runs ${expected}`);
  }
  if (!byKind("Job").some((j) => j.spec.template.spec.containers[0].command.join(" ") === "cerrojo-migrate up")) {
    fail(`overlay ${overlay}: no migration Job`);
  }
  if (byKind("Secret").length > 0) fail(`overlay ${overlay}: renders a Secret; Secrets are made outside the repository`);
  const namespaces = byKind("Namespace");
  if (namespaces.length !== 1) fail(`overlay ${overlay}: ${namespaces.length} Namespaces, expected 1`);
  else checkAccessTable(overlay, namespaces[0], byKind("NetworkPolicy"));
}
for (const file of yamlFiles(join(k8sDir, "secrets"))) {
  for (const object of parseManifests(readFileSync(file, "utf8"), file)) {
    for (const [key, value] of Object.entries(object.stringData ?? {})) {
      if (!value.includes("REPLACE_WITH_")) fail(`${file}: ${object.metadata.name}.${key} is not a placeholder`);
    }
    if (object.data) fail(`${file}: ${object.metadata.name} has data; use placeholders in stringData`);
  }
}

// --- environment variables --------------------------------------------------
// Read outside the settings tables: by every binary (common/config.c), and
// by those with a metrics server (common/metrics_http.c).
const COMMON_VARIABLES = ["CERROJO_ENV_FILE", "CERROJO_PROFILE", "CERROJO_METRICS_HOST"];
// Read by the gateway under another service's prefix; cj_config_warn_unknown
// in common/config.c does not report them either.
const SHARED_VARIABLES = ["CERROJO_KMS_ADDR", "CERROJO_SESSION_ADDR", "CERROJO_AUTH_ADDR"];
const PROGRAMS = ["kms", "session", "auth", "gateway", "migrate"];

function variablesRead(program) {
  const help = execFileSync(join(build, "bin", program), ["--help"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 30000,
  });
  return new Set([...help.matchAll(/^(CERROJO_[A-Z0-9_]+)$/gm)].map((m) => m[1]));
}

const readBy = {};
for (const name of PROGRAMS) {
  try {
    readBy[`cerrojo-${name}`] = variablesRead(`cerrojo-${name}`);
  } catch (error) {
    fail(`cerrojo-${name} --help failed in ${build}/bin: ${error.message}`);
    readBy[`cerrojo-${name}`] = new Set();
  }
}
const readByAny = new Set([...COMMON_VARIABLES, ...Object.values(readBy).flatMap((s) => [...s])]);

// Each container's variables: the ConfigMaps of envFrom, then env.
function containerVariables(container, configMaps) {
  const names = [];
  for (const source of container.envFrom ?? []) {
    const map = configMaps.find((m) => m.metadata.name === source.configMapRef?.name);
    names.push(...Object.keys(map?.data ?? {}));
  }
  names.push(...(container.env ?? []).map((e) => e.name));
  return names.filter((n) => n.startsWith("CERROJO_"));
}

function checkVariables(overlay, objects) {
  const configMaps = objects.filter((o) => o.kind === "ConfigMap");
  let containers = 0;
  for (const o of objects) {
    const pod = o.kind === "Deployment" || o.kind === "Job" ? o.spec.template.spec
      : o.kind === "CronJob" ? o.spec.jobTemplate.spec.template.spec : null;
    if (!pod) continue;
    for (const c of pod.containers) {
      // A command may wrap the binary in `sh -c`.
      const program = (c.command ?? []).join(" ").match(/\bcerrojo-[a-z]+/)?.[0];
      const own = readBy[program];
      if (!own) {
        fail(`overlay ${overlay}: ${o.metadata.name}: container runs ${program}, not a cerrojo service`);
        continue;
      }
      containers++;
      // The prefix the program reports unknown names under, as in
      // CERROJO_KMS_ for cerrojo-kms.
      const prefix = `CERROJO_${program.replace(/^cerrojo-/, "").toUpperCase()}_`;
      for (const name of containerVariables(c, configMaps)) {
        if (!readByAny.has(name) && !SHARED_VARIABLES.includes(name)) {
          fail(`overlay ${overlay}: ${o.metadata.name}: no cerrojo binary reads ${name}`);
        } else if (name.startsWith(prefix) && !own.has(name) && !SHARED_VARIABLES.includes(name)) {
          fail(`overlay ${overlay}: ${o.metadata.name}: ${program} does not read ${name}`);
        }
      }
    }
  }
  if (containers === 0) fail(`overlay ${overlay}: no container's variables checked`);
}

for (const [overlay, objects] of Object.entries(rendered)) checkVariables(overlay, objects);

// --- the access table -----------------------------------------------------
function matches(selector, labels) {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

// Whether a NetworkPolicy peer selects `pod`, for a policy in namespace `policyNs`.
function peerMatches(peer, pod, policyNs) {
  if (peer.ipBlock) return pod.external === true;
  if (pod.external) return false;
  if (peer.namespaceSelector) {
    if (!matches(peer.namespaceSelector, pod.namespaceLabels)) return false;
  } else if (pod.ns !== policyNs) {
    return false;
  }
  return peer.podSelector ? matches(peer.podSelector, pod.labels) : true;
}

// Whether the policies of `subject`'s namespace let traffic through in
// direction `type` between `subject` and `peer` on `port`. A pod that no
// policy selects for that direction is open.
function admits(policies, type, subject, peer, port) {
  const selecting = policies.filter((p) => (p.metadata.namespace ?? subject.ns) === subject.ns
    && (p.spec.policyTypes ?? ["Ingress"]).includes(type)
    && matches(p.spec.podSelector, subject.labels));
  if (selecting.length === 0) return true;
  const key = type === "Ingress" ? "ingress" : "egress";
  const peersKey = type === "Ingress" ? "from" : "to";
  return selecting.some((p) => (p.spec[key] ?? []).some((rule) =>
    (rule.ports === undefined || rule.ports.some((r) => r.port === port))
    && (rule[peersKey] === undefined || rule[peersKey].some((x) => peerMatches(x, peer, subject.ns)))));
}

function checkAccessTable(overlay, namespace, policies) {
  const ns = namespace.metadata.name;
  const nsLabels = { ...namespace.metadata.labels, "kubernetes.io/metadata.name": ns };
  const dataLabels = { "cerrojo.io/data": "true", "kubernetes.io/metadata.name": "cerrojo-data" };
  const ours = (identity) => ({
    name: identity, ns, labels: { "cerrojo.io/identity": identity }, namespaceLabels: nsLabels,
  });
  const other = (name, labels) => ({ name, ns: "elsewhere", labels, namespaceLabels: { team: "x" } });
  const store = (name) => ({
    name, ns: "cerrojo-data", labels: { "cerrojo.io/store": name }, namespaceLabels: dataLabels,
  });
  const pods = [
    ours("gateway"), ours("auth"), ours("kms"), ours("session"), ours("kms-admin"), ours("migrate"),
    { name: "neighbour", ns, labels: { app: "other" }, namespaceLabels: nsLabels },
    other("platform", { "cerrojo.io/platform-service": "true" }),
    other("stranger", { app: "other" }),
    store("postgres"), store("redis"),
    { name: "internet", external: true, ns: null, labels: {}, namespaceLabels: {} },
  ];
  const all = [...policies.map((p) => ({ ...p, metadata: { ...p.metadata, namespace: p.metadata.namespace ?? ns } })),
    ...storePolicies];
  const ports = { gateway: 8080, auth: 50051, kms: 50052, session: 50053, postgres: 5432, redis: 6379 };
  // Who may open a connection to each target; everyone else must not.
  // Outside the namespace is open only towards the gateway.
  const allowed = {
    gateway: ["internet", "stranger", "platform", "postgres", "redis"],
    auth: ["gateway", "platform"],
    kms: ["auth", "gateway"],
    session: ["gateway", "auth"],
    postgres: ["auth", "kms", "kms-admin", "migrate"],
    redis: ["gateway", "auth", "session"],
  };
  let pairs = 0;
  for (const [target, port] of Object.entries(ports)) {
    const to = pods.find((p) => p.name === target);
    for (const from of pods) {
      if (from === to) continue;
      const open = admits(all, "Ingress", to, from, port)
        && (from.external || admits(all, "Egress", from, to, port));
      const expected = allowed[target].includes(from.name);
      pairs++;
      if (open !== expected) {
        fail(`overlay ${overlay}: ${from.name} -> ${target}:${port} is ${open ? "open" : "closed"}, expected ${expected ? "open" : "closed"}`);
      }
    }
  }
  if (pairs === 0) fail(`overlay ${overlay}: no connection checked`);
}

for (const message of failures) console.error(`k8s: ${message}`);
if (failures.length > 0) process.exit(1);
console.log(`k8s: ${checked} manifests valid against the Kubernetes 1.27 schemas; access table holds in both overlays`);
