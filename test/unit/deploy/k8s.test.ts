import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/types.ts';
import { asWritten, kubectlAvailable, kustomize, parseObjects, readYaml, validateAgainstSchema, type K8sObject, type Kustomization } from '../../support/k8s.ts';
import { scratchPerTest } from '../../support/scratch.ts';
import { RUNTIME_ENV } from '../../../src/cli/runtime.ts';

/**
 * The Kubernetes manifests in k8s/ (k8s/monitoring/ excepted: it has tests of its own). With
 * kubectl on PATH, the example overlay is rendered by `kubectl kustomize` (offline) and checked as
 * it would be applied; the base and the development Redis component are always also checked as
 * written, so every assertion runs on machines with and without kubectl.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const K8S = join(ROOT, 'k8s');
const scratch = scratchPerTest();

interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: { readonly secretKeyRef?: { readonly name: string; readonly key: string } };
}
interface Probe {
  readonly httpGet?: { readonly path: string; readonly port: string | number };
}
interface SecurityContext {
  readonly runAsNonRoot?: boolean;
  readonly runAsUser?: number;
  readonly readOnlyRootFilesystem?: boolean;
  readonly allowPrivilegeEscalation?: boolean;
  readonly privileged?: boolean;
  readonly capabilities?: { readonly drop?: readonly string[]; readonly add?: readonly string[] };
  readonly seccompProfile?: { readonly type: string };
}
interface Container {
  readonly name: string;
  readonly image: string;
  readonly args?: readonly string[];
  readonly env?: readonly EnvVar[];
  readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[];
  readonly resources?: { readonly requests?: Record<string, string>; readonly limits?: Record<string, string> };
  readonly securityContext?: SecurityContext;
  readonly livenessProbe?: Probe;
  readonly readinessProbe?: Probe;
  readonly startupProbe?: Probe;
  readonly lifecycle?: { readonly preStop?: { readonly sleep?: { readonly seconds: number } } };
  readonly volumeMounts?: readonly { readonly name: string; readonly mountPath: string; readonly readOnly?: boolean }[];
}
interface PodSpec {
  readonly containers: readonly Container[];
  /** Native sidecars (restartPolicy: Always) run here. */
  readonly initContainers?: readonly (Container & { readonly restartPolicy?: string })[];
  readonly topologySpreadConstraints?: readonly { readonly topologyKey: string; readonly labelSelector?: { readonly matchLabels?: Record<string, string> } }[];
  readonly securityContext?: SecurityContext & { readonly fsGroup?: number };
  readonly terminationGracePeriodSeconds?: number;
  readonly automountServiceAccountToken?: boolean;
  readonly volumes?: readonly { readonly name: string; readonly configMap?: { readonly name: string }; readonly emptyDir?: object }[];
}
interface Deployment extends K8sObject {
  readonly spec: {
    readonly replicas?: number;
    readonly selector: { readonly matchLabels: Record<string, string> };
    readonly template: { readonly metadata: { readonly labels: Record<string, string>; readonly annotations?: Record<string, string> }; readonly spec: PodSpec };
  };
}
interface Service extends K8sObject {
  readonly spec: { readonly selector: Record<string, string>; readonly type?: string; readonly ports: readonly { readonly name?: string; readonly port: number; readonly targetPort: string | number }[] };
}
interface NetworkPolicyPeer {
  readonly podSelector?: object;
  readonly namespaceSelector?: object;
  readonly ipBlock?: object;
}
interface NetworkPolicy extends K8sObject {
  readonly spec: {
    readonly podSelector: { readonly matchLabels?: Record<string, string> };
    readonly policyTypes?: readonly string[];
    readonly ingress?: readonly { readonly from?: readonly NetworkPolicyPeer[]; readonly ports?: readonly { readonly port?: string | number }[] }[];
  };
}

// ---- the objects: rendered by kubectl, or read as written ----------------------------------------

const KUBECTL = kubectlAvailable();
const BASE = join(K8S, 'base');
const DEV_REDIS = join(K8S, 'components', 'dev-redis');
const EXAMPLE = join(K8S, 'overlays', 'example');

interface Source {
  readonly label: string;
  readonly rendered: boolean;
  readonly objects: readonly K8sObject[];
}

const SOURCES: Source[] = [
  ...(KUBECTL ? [{ label: 'kubectl kustomize k8s/overlays/example', rendered: true, objects: kustomize(EXAMPLE) }] : []),
  { label: 'k8s/base and k8s/components/dev-redis as written', rendered: false, objects: [...asWritten(BASE), ...asWritten(DEV_REDIS)] },
];

// ---- helpers ----------------------------------------------------------------------------------------

const DEV_ONLY = 'allowgate.example/dev-only';

function find<T extends K8sObject>(objects: readonly K8sObject[], kind: string, name: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`), `exactly one ${kind}/${name}`).toEqual([`${kind}/${name}`]);
  return found[0] as T;
}

/** A generated ConfigMap is named `<name>-<hash>` once rendered. */
function findConfigMap(objects: readonly K8sObject[], name: string): K8sObject & { data: Record<string, string> } {
  const found = objects.filter((o) => o.kind === 'ConfigMap' && (o.metadata.name === name || o.metadata.name.startsWith(`${name}-`)));
  expect(found.length, `one ConfigMap ${name}`).toBe(1);
  return found[0] as K8sObject & { data: Record<string, string> };
}

function podsOf(objects: readonly K8sObject[]): Deployment[] {
  return objects.filter((o): o is Deployment => o.kind === 'Deployment');
}

/** Every container of a pod, native sidecars (init containers that keep running) included. */
function allContainers(deployment: Deployment): readonly Container[] {
  return [...(deployment.spec.template.spec.initContainers ?? []), ...deployment.spec.template.spec.containers];
}

function containerOf(deployment: Deployment, name: string): Container {
  const container = allContainers(deployment).find((c) => c.name === name);
  expect(container, `container ${name}`).toBeDefined();
  return container!;
}

function envOf(container: Container, name: string): EnvVar | undefined {
  return container.env?.find((e) => e.name === name);
}

function envValue(container: Container, name: string): string {
  const value = envOf(container, name)?.value;
  expect(value, `${container.name} sets ${name}`).toBeDefined();
  return value!;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A named container port resolved to its number (the number itself when given one). */
function portNumber(container: Container, port: string | number): number {
  if (typeof port === 'number') return port;
  const found = container.ports?.find((p) => p.name === port);
  expect(found, `${container.name} has a port named ${port}`).toBeDefined();
  return found!.containerPort;
}

function secretValues(secret: K8sObject): Record<string, string> {
  const values: Record<string, string> = { ...(secret['stringData'] as Record<string, string> | undefined) };
  for (const [key, encoded] of Object.entries((secret['data'] as Record<string, string> | undefined) ?? {})) values[key] = Buffer.from(encoded, 'base64').toString('utf8');
  return values;
}

const PLACEHOLDER = /CHANGE[\s_-]?ME/i;

/** Stand-ins for the Secret's placeholders: values of the shape a real deployment would use. */
const TEST_SECRETS: Record<string, string> = {
  'admin-token': 'k8s-test-admin-token-0123456789abcdef',
  'redis-password': 'k8s-test-redis-password',
};

/** The allowgate container's environment as the pod gets it, Secret references resolved. */
function environmentOf(objects: readonly K8sObject[], container: Container, secrets: 'placeholders' | 'test values'): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of container.env ?? []) {
    if (item.value !== undefined) {
      env[item.name] = item.value;
      continue;
    }
    const ref = item.valueFrom?.secretKeyRef;
    expect(ref, `${item.name} is a value or a Secret reference`).toBeDefined();
    const stored = secretValues(find(objects, 'Secret', ref!.name))[ref!.key];
    expect(stored, `Secret ${ref!.name} has ${ref!.key}`).toBeDefined();
    env[item.name] = secrets === 'placeholders' ? stored! : TEST_SECRETS[ref!.key]!;
  }
  return env;
}

/** The ConfigMap's allowgate.yaml and the Deployment's environment, through the real config loader. */
function loadDeployedConfig(objects: readonly K8sObject[], secrets: 'placeholders' | 'test values'): Config {
  const deployment = find<Deployment>(objects, 'Deployment', 'api');
  const allowgate = containerOf(deployment, 'allowgate');
  const configPath = envValue(allowgate, 'ALLOWGATE_CONFIG');
  const mount = allowgate.volumeMounts?.find((m) => m.mountPath === dirname(configPath));
  expect(mount, `a volume mounted at ${dirname(configPath)}`).toBeDefined();
  expect(mount!.readOnly).toBe(true);
  const volume = deployment.spec.template.spec.volumes?.find((v) => v.name === mount!.name);
  expect(volume?.configMap, 'the config volume is a ConfigMap').toBeDefined();
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume!.configMap!.name) as (K8sObject & { data: Record<string, string> }) | undefined;
  expect(configMap, `ConfigMap ${volume!.configMap!.name} exists`).toBeDefined();
  const yaml = configMap!.data[basename(configPath)];
  expect(yaml, `the ConfigMap holds ${basename(configPath)}`).toBeDefined();
  const file = join(scratch(), 'allowgate.yaml');
  writeFileSync(file, yaml!);
  // --config overrides ALLOWGATE_CONFIG, which names the path inside the pod.
  return loadConfig({ argv: ['--config', file], env: environmentOf(objects, allowgate, secrets) });
}

// ---- the checks ---------------------------------------------------------------------------------------

describe('k8s manifest files', () => {
  const yamlFiles = (dir: string): string[] => readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return path === join(K8S, 'monitoring') ? [] : yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });

  it('every YAML file parses', () => {
    const files = yamlFiles(K8S);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) parseObjects(readFileSync(file, 'utf8'), relative(ROOT, file));
  });

  it('every file of the base is used by its kustomization', () => {
    const kustomization = readYaml<Kustomization>(join(BASE, 'kustomization.yaml'));
    const used = new Set(['kustomization.yaml', ...(kustomization.resources ?? []), ...(kustomization.configMapGenerator ?? []).flatMap((g) => (g.files ?? []).map((f) => f.split('=').pop()!))]);
    expect(readdirSync(BASE).filter((f) => !used.has(f))).toEqual([]);
  });

  it('the base holds no development Redis: only overlays that opt in get it', () => {
    const kustomization = readYaml<Kustomization>(join(BASE, 'kustomization.yaml'));
    expect(kustomization.components ?? []).toEqual([]);
    const base = asWritten(BASE);
    expect(base.filter((o) => o.metadata.labels?.[DEV_ONLY] !== undefined || /redis/i.test(o.metadata.name))).toEqual([]);
    expect(readYaml<Kustomization>(join(DEV_REDIS, 'kustomization.yaml')).kind).toBe('Component');
    expect(readYaml<Kustomization>(join(EXAMPLE, 'kustomization.yaml')).components).toContain('../../components/dev-redis');
  });

  it(`renders with kubectl kustomize where kubectl is installed (here: ${KUBECTL ? 'yes' : 'no'})`, () => {
    if (!KUBECTL) {
      // Without kubectl the checks below run on the files as written (SOURCES).
      expect(SOURCES.map((s) => s.rendered)).toEqual([false]);
      return;
    }
    const base = kustomize(BASE);
    expect(base.some((o) => o.metadata.labels?.[DEV_ONLY] !== undefined)).toBe(false);
    const example = SOURCES[0]!.objects;
    expect(example.find((o) => o.kind === 'Namespace')?.metadata.name).toBe('api-example');
    for (const o of example.filter((o) => o.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('api-example');
    const deployment = find<Deployment>(example, 'Deployment', 'api');
    expect(deployment.spec.replicas).toBe(3);
    expect(containerOf(deployment, 'allowgate').image).toBe('registry.example.com/allowgate:0.1.0');
    expect(containerOf(deployment, 'api').image).toBe('registry.example.com/api:1.0');
    // The generated ConfigMap carries a content hash, and the pod mounts that very name.
    const configMap = findConfigMap(example, 'allowgate-config');
    expect(configMap.metadata.name).toMatch(/^allowgate-config-[a-z0-9]{6,}$/);
    expect(deployment.spec.template.spec.volumes?.some((v) => v.configMap?.name === configMap.metadata.name)).toBe(true);
    expect(find(example, 'PodMonitor', 'api-allowgate').metadata.labels?.['release']).toBe('kube-prometheus-stack');
  });
});

describe.each(SOURCES)('k8s: $label', ({ objects, rendered }) => {
  const deployment = (): Deployment => find<Deployment>(objects, 'Deployment', 'api');
  const allowgate = (): Container => containerOf(deployment(), 'allowgate');
  const api = (): Container => containerOf(deployment(), 'api');
  const podLabels = (): Record<string, string> => deployment().spec.template.metadata.labels;

  it('runs the API and allowgate as a native sidecar in one pod', () => {
    const d = deployment();
    expect(d.apiVersion).toBe('apps/v1');
    // A native sidecar (Kubernetes >= 1.29): an init container that keeps running.
    expect(d.spec.template.spec.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([['allowgate', 'Always']]);
    expect(d.spec.template.spec.containers.map((c) => c.name)).toEqual(['api']);
    expect(selects(d.spec.selector.matchLabels, podLabels())).toBe(true);
    expect(api().image).toMatch(/(^|\/)api:[\w.-]+$/);
    expect(allowgate().image).toMatch(/(^|\/)allowgate:[\w.-]+$/);
    // The image's own entrypoint and command (`node src/cli.ts serve`) start the gateway.
    expect(allowgate().args).toBeUndefined();
  });

  it('keeps the API on the loopback interface, reached only through allowgate', () => {
    expect(envValue(api(), 'HOST')).toBe('127.0.0.1');
    const port = envValue(api(), 'PORT');
    expect(api().ports ?? []).toEqual([]);
    expect(envValue(allowgate(), 'ALLOWGATE_UPSTREAM_URL')).toBe(`http://127.0.0.1:${port}`);
    // No Service and no NetworkPolicy rule leads to the API's port.
    for (const service of objects.filter((o): o is Service => o.kind === 'Service')) {
      for (const p of service.spec.ports) expect(p.targetPort, `${service.metadata.name}`).not.toBe(Number(port));
    }
    for (const policy of objects.filter((o): o is NetworkPolicy => o.kind === 'NetworkPolicy')) {
      for (const rule of policy.spec.ingress ?? []) expect((rule.ports ?? []).map((p) => p.port)).not.toContain(Number(port));
    }
  });

  it('routes the Service to allowgate by port name, and the admin port through a Service of its own', () => {
    const traffic = find<Service>(objects, 'Service', 'api');
    expect(selects(traffic.spec.selector, podLabels())).toBe(true);
    expect(traffic.spec.ports.map((p) => p.targetPort)).toEqual(['proxy']);
    expect(portNumber(allowgate(), 'proxy')).toBe(8080);
    const admin = find<Service>(objects, 'Service', 'api-allowgate-admin');
    expect(selects(admin.spec.selector, podLabels())).toBe(true);
    expect(admin.spec.ports.map((p) => p.targetPort)).toEqual(['admin']);
    expect(admin.spec.type ?? 'ClusterIP').toBe('ClusterIP');
    expect(portNumber(allowgate(), 'admin')).toBe(9090);
    // Listen addresses match the ports: every interface, so probes and Prometheus reach them.
    expect(envValue(allowgate(), 'ALLOWGATE_LISTEN')).toBe('0.0.0.0:8080');
    expect(envValue(allowgate(), 'ALLOWGATE_ADMIN_LISTEN')).toBe('0.0.0.0:9090');
  });

  it('probes liveness on /healthz and readiness on /readyz on the admin port', () => {
    const c = allowgate();
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter((p) => p !== undefined)) {
      expect(portNumber(c, probe.httpGet!.port)).toBe(9090);
    }
    if (c.startupProbe) expect(c.startupProbe.httpGet?.path).toBe('/healthz');
  });

  it('sets resource requests and limits on every container', () => {
    const containers = podsOf(objects).flatMap(allContainers);
    expect(containers.length).toBe(3);
    for (const c of containers) {
      expect(Object.keys(c.resources?.requests ?? {}).sort(), `${c.name} requests`).toEqual(['cpu', 'memory']);
      expect(c.resources?.limits?.['memory'], `${c.name} memory limit`).toBeDefined();
      expect(c.resources?.limits?.['cpu'], `${c.name} cpu limit`).toBeDefined();
    }
  });

  it('runs every container non-root, read-only, without privileges or capabilities, under RuntimeDefault seccomp', () => {
    for (const d of podsOf(objects)) {
      const pod = d.spec.template.spec;
      expect(pod.automountServiceAccountToken, `${d.metadata.name}`).toBe(false);
      for (const c of allContainers(d)) {
        const sc = c.securityContext ?? {};
        const where = `${d.metadata.name}/${c.name}`;
        expect(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, where).toBe(true);
        expect(sc.runAsUser ?? pod.securityContext?.runAsUser, where).toBeGreaterThan(0);
        expect(sc.readOnlyRootFilesystem, where).toBe(true);
        expect(sc.allowPrivilegeEscalation, where).toBe(false);
        expect(sc.privileged ?? false, where).toBe(false);
        expect(sc.capabilities?.drop, where).toContain('ALL');
        expect(sc.capabilities?.add ?? [], where).toEqual([]);
        expect((sc.seccompProfile ?? pod.securityContext?.seccompProfile)?.type, where).toBe('RuntimeDefault');
      }
    }
    // The image's user (Dockerfile: USER 10001:10001), so the image's data/ directory is writable.
    expect(allowgate().securityContext?.runAsUser).toBe(10001);
  });

  it('gives allowgate its writable data directory on an emptyDir, where the snapshot goes', () => {
    const d = deployment();
    const mount = allowgate().volumeMounts?.find((m) => m.mountPath === '/app/data');
    expect(mount).toBeDefined();
    expect(d.spec.template.spec.volumes?.find((v) => v.name === mount!.name)?.emptyDir).toBeDefined();
    const snapshot = loadDeployedConfig(objects, 'test values').cache.snapshotPath;
    expect(snapshot?.startsWith('/app/data/')).toBe(true);
  });

  it('gives the pod longer to stop than the API and then allowgate take, and stops allowgate last', () => {
    const config = loadDeployedConfig(objects, 'test values');
    const pod = deployment().spec.template.spec;
    const apiPause = api().lifecycle?.preStop?.sleep?.seconds ?? 0;
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    // A native sidecar gets SIGTERM once the API has exited: no pause of its own is needed, and
    // the API pauses while the endpoints go so that no request arrives after its SIGTERM.
    expect(allowgate().lifecycle?.preStop).toBeUndefined();
    expect(apiPause).toBeGreaterThanOrEqual(5);
    // Room for the API's pause, as long again for its own drain, then allowgate's.
    expect(grace).toBeGreaterThan(2 * apiPause + config.shutdownTimeoutMs / 1000);
  });

  it('is scraped one way only: a PodMonitor on the metrics port, no scrape annotations', () => {
    const annotations = deployment().spec.template.metadata.annotations ?? {};
    expect(Object.keys(annotations).filter((k) => k.startsWith('prometheus.io/'))).toEqual([]);
    const monitor = find<K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] } }>(objects, 'PodMonitor', 'api-allowgate');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(selects(monitor.spec.selector.matchLabels, podLabels())).toBe(true);
    expect(monitor.spec.podMetricsEndpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
    // /metrics has a listener of its own, on the port the PodMonitor names.
    expect(loadDeployedConfig(objects, 'test values').metrics.listen).toEqual({ host: '0.0.0.0', port: portNumber(allowgate(), 'metrics') });
  });

  it('spreads replicas over zones, then nodes', () => {
    const spread = deployment().spec.template.spec.topologySpreadConstraints ?? [];
    expect(spread.map((c) => c.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    for (const c of spread) expect(selects(c.labelSelector?.matchLabels, podLabels())).toBe(true);
  });

  it('is Ready only with its API listening, which it probes through allowgate\'s exempt health path', () => {
    const config = loadDeployedConfig(objects, 'test values');
    expect(config.readiness.upstream).toBe(true);
    const probe = api().readinessProbe?.httpGet;
    expect(probe).toBeDefined();
    expect(portNumber(allowgate(), 'proxy')).toBe(Number(probe!.port));
    expect(config.identity.exemptPaths).toContain(probe!.path);
  });

  it('limits voluntary disruptions with a PodDisruptionBudget', () => {
    const pdb = find<K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number } }>(objects, 'PodDisruptionBudget', 'api');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(selects(pdb.spec.selector.matchLabels, podLabels())).toBe(true);
    const replicas = deployment().spec.replicas ?? 1;
    expect(replicas).toBeGreaterThanOrEqual(2);
    if (pdb.spec.maxUnavailable !== undefined) expect(pdb.spec.maxUnavailable).toBe(1);
    else expect(pdb.spec.minAvailable).toBeLessThan(replicas);
  });

  it('admits traffic on 8080 from anywhere and the admin port only from inside the cluster', () => {
    const policy = find<NetworkPolicy>(objects, 'NetworkPolicy', 'api');
    expect(selects(policy.spec.podSelector.matchLabels, podLabels())).toBe(true);
    expect(policy.spec.policyTypes).toContain('Ingress');
    const rules = policy.spec.ingress ?? [];
    // Every rule names its ports: none opens every port.
    for (const rule of rules) expect(rule.ports?.length ?? 0).toBeGreaterThan(0);
    const portsOf = (rule: (typeof rules)[number]): number[] => (rule.ports ?? []).map((p) => portNumber(allowgate(), p.port!));
    expect(rules.flatMap(portsOf).sort()).toEqual([8080, 9090, 9091]);
    const traffic = rules.filter((r) => portsOf(r).includes(8080));
    expect(traffic.some((r) => r.from === undefined || r.from.length === 0)).toBe(true);
    // The metrics port from the monitoring namespace only, the admin port from the operators' only.
    const peersOf = (port: number): unknown[] => rules.filter((r) => portsOf(r).includes(port)).flatMap((r): unknown[] => [...(r.from ?? [{ everyone: true }])]);
    expect(peersOf(9091)).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    expect(peersOf(9090)).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'operators' } } }]);
    expect(portNumber(allowgate(), 'metrics')).toBe(9091);
  });

  it('holds a config that the real loader accepts with the environment the Deployment sets', () => {
    const config = loadDeployedConfig(objects, 'test values');
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.admin.listen).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(config.admin.tokenSource).toBe('configured');
    expect(config.upstream.url.origin).toBe('http://127.0.0.1:3000');
    expect(config.store.kind).toBe('redis');
    if (config.store.kind === 'redis') {
      expect(config.store.password).toBe(TEST_SECRETS['redis-password']);
      expect(config.store.topology.mode).toBe('standalone');
      const url = config.store.topology.mode === 'standalone' ? config.store.topology.url : '';
      // The base names a managed Redis over TLS; the example overlay its development Redis.
      expect(url).toBe(rendered ? 'redis://allowgate-redis:6379/0' : 'rediss://redis.example.internal:6380/0');
    }
    expect(config.onStoreUnavailable).toBe('closed');
    // Forwarding headers are believed from listed proxies only, and never from everyone.
    expect(config.clientIp.trust.mode).toBe('list');
    if (config.clientIp.trust.mode === 'list') {
      expect(config.clientIp.trust.proxies.length).toBeGreaterThan(0);
      for (const cidr of config.clientIp.trust.proxies) expect(cidr.prefix).toBeGreaterThanOrEqual(8);
    }
    // Memory: the runtime's settings as the image has them, a heap ceiling under the limit, and
    // compiled lists within the heap (docs/deployment.md, "Memory").
    for (const [name, value] of Object.entries(RUNTIME_ENV)) expect(envValue(allowgate(), name), name).toBe(value);
    expect(allowgate().resources?.limits?.['memory']).toBe('256Mi');
    expect(allowgate().resources?.requests?.['memory']).toBe('160Mi');
    const heapCeilingMb = Number(/--max-old-space-size=(\d+)/.exec(envValue(allowgate(), 'NODE_OPTIONS'))![1]);
    expect(heapCeilingMb).toBeLessThan(256);
    expect(config.cache.maxBytes).toBeLessThanOrEqual((heapCeilingMb / 2) * 1024 * 1024);
  });

  it('ships placeholder secrets, which allowgate refuses to start with', () => {
    const secret = find(objects, 'Secret', 'allowgate-secrets');
    const values = secretValues(secret);
    expect(Object.keys(values).sort()).toEqual(Object.keys(TEST_SECRETS).sort());
    for (const [key, value] of Object.entries(values)) expect(value, key).toMatch(PLACEHOLDER);
    expect(secret.metadata.annotations?.['allowgate.example/placeholder']).toMatch(/^true/);
    // Every Secret reference in every pod points at a key that exists.
    for (const d of podsOf(objects)) {
      for (const c of allContainers(d)) {
        for (const ref of (c.env ?? []).map((e) => e.valueFrom?.secretKeyRef).filter((r) => r !== undefined)) {
          expect(values[ref.key], `${c.name}: ${ref.name}/${ref.key}`).toBeDefined();
        }
      }
    }
    // Deployed as it is, the placeholder admin token stops the gateway at start.
    let error: unknown;
    try {
      loadDeployedConfig(objects, 'placeholders');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^ALLOWGATE_ADMIN_TOKEN must be/);
  });

  it('labels the development Redis as development only', () => {
    const redis = objects.filter((o) => /redis/i.test(o.metadata.name));
    expect(redis.map((o) => o.kind).sort()).toEqual(['Deployment', 'NetworkPolicy', 'Service']);
    for (const o of redis) {
      expect(o.metadata.labels?.[DEV_ONLY], `${o.kind}/${o.metadata.name}`).toBe('true');
      expect(o.metadata.annotations?.[DEV_ONLY] ?? '', `${o.kind}/${o.metadata.name}`).toMatch(/development only/i);
    }
    const deploymentOfRedis = find<Deployment>(objects, 'Deployment', 'allowgate-redis');
    expect(deploymentOfRedis.spec.template.metadata.labels[DEV_ONLY]).toBe('true');
    expect(deploymentOfRedis.spec.template.metadata.annotations?.[DEV_ONLY]).toMatch(/managed or HA Redis with TLS and a password/);
    // Redis requires the very password allowgate sends.
    const container = containerOf(deploymentOfRedis, 'redis');
    expect(container.args).toContain('--requirepass');
    expect(envOf(container, 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef).toEqual(envOf(allowgate(), 'ALLOWGATE_REDIS_PASSWORD')?.valueFrom?.secretKeyRef);
    // Only the allowgate pods reach it.
    const policy = find<NetworkPolicy>(objects, 'NetworkPolicy', 'allowgate-redis');
    const peers = policy.spec.ingress?.flatMap((r) => r.from ?? []) ?? [];
    expect(peers.length).toBeGreaterThan(0);
    for (const peer of peers) {
      expect(peer.namespaceSelector ?? peer.ipBlock).toBeUndefined();
      expect(selects((peer.podSelector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels, podLabels())).toBe(true);
    }
  });

  it('is valid against the Kubernetes API schemas (kubernetes-models)', async () => {
    for (const object of objects) await expect(validateAgainstSchema(object), `${object.kind}/${object.metadata.name}`).resolves.toBeUndefined();
  });
});

describe('k8s: the plain-sidecar overlay (clusters before 1.29)', () => {
  const PLAIN = join(K8S, 'overlays', 'plain-sidecar');

  it(`makes allowgate an ordinary container with preStop ordering, scraped by annotations only${KUBECTL ? '' : ' (patch as written: kubectl is not installed)'}`, () => {
    if (!KUBECTL) {
      // Without kubectl: the patch says what kustomize would do.
      const kustomization = readFileSync(join(PLAIN, 'kustomization.yaml'), 'utf8');
      expect(kustomization).toContain('from: /spec/template/spec/initContainers/0');
      expect(kustomization).toContain('path: /spec/template/spec/containers/1/restartPolicy');
      expect(kustomization).toContain('../../components/scrape-annotations');
      return;
    }
    const objects = kustomize(PLAIN);
    const deployment = find<Deployment>(objects, 'Deployment', 'api');
    const pod = deployment.spec.template.spec;
    expect(pod.initContainers ?? []).toEqual([]);
    expect(pod.containers.map((c) => c.name)).toEqual(['api', 'allowgate']);
    const allowgate = containerOf(deployment, 'allowgate') as Container & { restartPolicy?: string };
    expect(allowgate.restartPolicy).toBeUndefined();
    // Without native ordering: allowgate pauses, then drains; the API outlasts both.
    const config = loadDeployedConfig(objects, 'test values');
    const gatewayDone = (allowgate.lifecycle?.preStop?.sleep?.seconds ?? 0) + config.shutdownTimeoutMs / 1000;
    const apiPause = containerOf(deployment, 'api').lifecycle?.preStop?.sleep?.seconds ?? 0;
    expect(allowgate.lifecycle?.preStop?.sleep?.seconds).toBeGreaterThan(0);
    expect(apiPause).toBeGreaterThanOrEqual(gatewayDone);
    expect(pod.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(apiPause);
    // One scrape mechanism: annotations on the metrics port, and no PodMonitor.
    const annotations = deployment.spec.template.metadata.annotations ?? {};
    expect(annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(portNumber(allowgate, 'metrics')), 'prometheus.io/path': '/metrics' });
    expect(objects.filter((o) => o.kind === 'PodMonitor')).toEqual([]);
  });
});
