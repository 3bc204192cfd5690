import { readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FORWARD_AUTH_PATH, AUTH_REQUEST_PATH } from '../../../src/authz/http-protocols.ts';
import { loadConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/types.ts';
import { asWritten, kubectlAvailable, kustomize, readYaml, validateAgainstSchema, type K8sObject, type Kustomization } from '../../support/k8s.ts';
import { scratchPerTest } from '../../support/scratch.ts';

/**
 * k8s/authz: allowgate as a decision service, and the integrations that make ingress-nginx,
 * Traefik, Gateway API implementations and Istio ask it. Rendered by `kubectl kustomize` where
 * kubectl is installed (and read as written otherwise); every reference between an integration
 * and the service is checked against the service as rendered, and the service's configuration is
 * loaded by the real config loader.
 */

const K8S = fileURLToPath(new URL('../../../k8s/authz/', import.meta.url));
const KUBECTL = kubectlAvailable();
const scratch = scratchPerTest();

const render = (dir: string): K8sObject[] => (KUBECTL ? kustomize(join(K8S, dir)) : asWritten(join(K8S, dir)));

interface Container {
  readonly name: string;
  readonly env?: readonly { readonly name: string; readonly value?: string; readonly valueFrom?: { readonly secretKeyRef?: { readonly name: string; readonly key: string } } }[];
  readonly ports?: readonly { readonly name: string; readonly containerPort: number }[];
  readonly volumeMounts?: readonly { readonly name: string; readonly mountPath: string }[];
}
interface Deployment extends K8sObject {
  readonly spec: { readonly template: { readonly metadata: { readonly labels: Record<string, string> }; readonly spec: { readonly containers: readonly Container[]; readonly volumes?: readonly { readonly name: string; readonly configMap?: { readonly name: string } }[] } } };
}
interface Service extends K8sObject {
  readonly spec: { readonly selector: Record<string, string>; readonly ports: readonly { readonly name: string; readonly port: number; readonly targetPort: string | number; readonly appProtocol?: string }[] };
}

function only<T extends K8sObject>(objects: readonly K8sObject[], kind: string, name?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`), `exactly one ${kind}${name === undefined ? '' : `/${name}`}`).toHaveLength(1);
  return found[0] as T;
}

// Without kubectl, the service's base as written (the example overlay only adds a namespace and Redis).
const service = KUBECTL ? kustomize(join(K8S, 'example')) : asWritten(join(K8S, 'service'));
const deployment = only<Deployment>(service, 'Deployment', 'allowgate-authz');
const container = deployment.spec.template.spec.containers.find((c) => c.name === 'allowgate')!;
const env = (name: string): string | undefined => container.env?.find((e) => e.name === name)?.value;
const checks = only<Service>(service, 'Service', 'allowgate-authz');
/** Where the integrations must send checks: the Service's DNS name in the example's namespace. */
const namespace = KUBECTL ? only(service, 'Namespace').metadata.name : 'allowgate-authz';
const host = `allowgate-authz.${namespace}.svc.cluster.local`;
const portOf = (name: string): number => checks.spec.ports.find((p) => p.name === name)!.port;

function deployedConfig(): Config {
  const configPath = env('ALLOWGATE_CONFIG')!;
  const mount = container.volumeMounts!.find((m) => m.mountPath === dirname(configPath))!;
  const volume = deployment.spec.template.spec.volumes!.find((v) => v.name === mount.name)!;
  const configMap = service.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume.configMap!.name) as K8sObject & { data: Record<string, string> };
  const file = join(scratch(), 'allowgate.yaml');
  writeFileSync(file, configMap.data[basename(configPath)]!);
  const values: Record<string, string> = {};
  for (const item of container.env ?? []) {
    values[item.name] = item.value ?? (item.valueFrom?.secretKeyRef?.key === 'admin-token' ? 'k8s-test-admin-token-0123456789abcdef' : 'k8s-test-redis-password');
  }
  return loadConfig({ argv: ['--config', file], env: values });
}

describe(`k8s/authz: the decision service (${KUBECTL ? 'kubectl kustomize' : 'as written'})`, () => {
  it('runs without a proxy listener, serving both authz protocols and the admin port', () => {
    const config = deployedConfig();
    expect(config.listen).toBeNull();
    expect(config.authz.listen).toEqual({ host: '0.0.0.0', port: 9191 });
    expect(config.authz.grpcListen).toEqual({ host: '0.0.0.0', port: 9292 });
    expect(config.admin.listen).toEqual({ host: '0.0.0.0', port: 9090 });
    const ports = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ 'authz-http': 9191, 'authz-grpc': 9292, admin: 9090 });
    expect(checks.spec.ports.map((p) => [p.name, p.port, p.targetPort])).toEqual([['http', 9191, 'authz-http'], ['grpc', 9292, 'authz-grpc']]);
    // Envoy-based gateways need to know the gRPC port speaks HTTP/2 in the clear.
    expect(checks.spec.ports.find((p) => p.name === 'grpc')?.appProtocol).toBe('kubernetes.io/h2c');
    for (const [key, value] of Object.entries(checks.spec.selector)) expect(deployment.spec.template.metadata.labels[key]).toBe(value);
  });

  it('believes only listed proxies, never everyone, and shares one Redis across replicas', () => {
    const config = deployedConfig();
    expect(config.clientIp.trust.mode).toBe('list');
    if (config.clientIp.trust.mode === 'list') for (const cidr of config.clientIp.trust.proxies) expect(cidr.prefix).toBeGreaterThanOrEqual(8);
    expect(config.store.kind).toBe('redis');
    expect(config.onStoreUnavailable).toBe('closed');
    expect(config.authz.upstreamHeaders).toEqual({ account: 'X-Allowgate-Account', clientIp: 'X-Allowgate-Client-IP' });
  });

  it('admits checks only from the proxies\' namespaces, and lets the decision service reach the development Redis', () => {
    const policy = only<K8sObject & { spec: { ingress: { from: { namespaceSelector?: object; podSelector?: { matchLabels?: Record<string, string> } }[]; ports: { port: number }[] }[] } }>(service, 'NetworkPolicy', 'allowgate-authz');
    const authzRules = policy.spec.ingress.filter((r) => r.ports.some((p) => p.port === 9191 || p.port === 9292));
    expect(authzRules.length).toBeGreaterThan(0);
    for (const rule of authzRules) {
      expect(rule.from.length).toBeGreaterThan(0);
      for (const peer of rule.from) expect(peer.namespaceSelector).toBeDefined();
    }
    if (KUBECTL) {
      const redis = only<K8sObject & { spec: { ingress: { from: { podSelector?: { matchLabels?: Record<string, string> } }[] }[] } }>(service, 'NetworkPolicy', 'allowgate-redis');
      expect(redis.spec.ingress.flatMap((r) => r.from).some((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'allowgate-authz')).toBe(true);
      expect(env('ALLOWGATE_STORE')).toBe('redis://allowgate-redis:6379/0');
    }
  });

  it('is valid against the Kubernetes API schemas', async () => {
    for (const object of service) await expect(validateAgainstSchema(object), `${object.kind}/${object.metadata.name}`).resolves.toBeUndefined();
  });
});

describe('k8s/authz/integrations', () => {
  it('has one directory per proxy, each a kustomization that renders', () => {
    const dirs = readdirSync(join(K8S, 'integrations')).sort();
    expect(dirs).toEqual(['gateway-api', 'ingress-nginx', 'istio', 'traefik']);
    for (const dir of dirs) {
      expect(readYaml<Kustomization>(join(K8S, 'integrations', dir, 'kustomization.yaml')).resources?.length).toBeGreaterThan(0);
      expect(render(`integrations/${dir}`).length).toBeGreaterThan(0);
    }
  });

  it('ingress-nginx: auth-url is the auth_request endpoint, and the checked account and address reach the API', async () => {
    const ingress = only<K8sObject & { spec: { ingressClassName: string } }>(render('integrations/ingress-nginx'), 'Ingress');
    const annotations = ingress.metadata.annotations!;
    expect(annotations['nginx.ingress.kubernetes.io/auth-url']).toBe(`http://${host}:${portOf('http')}${AUTH_REQUEST_PATH}`);
    expect(annotations['nginx.ingress.kubernetes.io/auth-response-headers']?.split(',')).toEqual(['X-Allowgate-Account', 'X-Allowgate-Client-IP']);
    // The target alone beside X-Original-URL (which holds the client's Host), so the two must agree.
    expect(annotations['nginx.ingress.kubernetes.io/auth-snippet']?.trim()).toBe('proxy_set_header X-Original-URI $request_uri;');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    await validateAgainstSchema(ingress);
  });

  it('Traefik: a ForwardAuth middleware on the forward-auth endpoint, not trusting client forwarding headers, used by the Ingress', async () => {
    const objects = render('integrations/traefik');
    const middleware = only<K8sObject & { spec: { forwardAuth: { address: string; trustForwardHeader: boolean; authResponseHeaders: string[] } } }>(objects, 'Middleware');
    expect(middleware.apiVersion).toBe('traefik.io/v1alpha1');
    expect(middleware.spec.forwardAuth).toEqual({
      address: `http://${host}:${portOf('http')}${FORWARD_AUTH_PATH}`,
      trustForwardHeader: false,
      authResponseHeaders: ['X-Allowgate-Account', 'X-Allowgate-Client-IP'],
    });
    const ingress = only<K8sObject>(objects, 'Ingress');
    expect(ingress.metadata.annotations?.['traefik.ingress.kubernetes.io/router.middlewares']).toBe(`${middleware.metadata.namespace}-${middleware.metadata.name}@kubernetescrd`);
    expect(ingress.metadata.namespace).toBe(middleware.metadata.namespace);
    await validateAgainstSchema(ingress);
  });

  it('Gateway API: an HTTPRoute rule with an ExternalAuth filter over gRPC, allowed by a ReferenceGrant', () => {
    const objects = render('integrations/gateway-api');
    type Route = K8sObject & { spec: { rules: { filters: { type: string; externalAuth?: { protocol: string; backendRef: { name: string; namespace: string; port: number }; grpc?: { allowedHeaders: string[] } } }[] }[] } };
    const route = only<Route>(objects, 'HTTPRoute');
    expect(route.apiVersion).toBe('gateway.networking.k8s.io/v1');
    const filters = route.spec.rules.flatMap((r) => r.filters);
    expect(filters.map((f) => f.type)).toEqual(['ExternalAuth']);
    const auth = filters[0]!.externalAuth!;
    expect(auth.protocol).toBe('GRPC');
    expect(auth.backendRef).toEqual({ name: 'allowgate-authz', namespace, port: portOf('grpc') });
    // Every request header reaches the check: credentials may be in any of them.
    expect(auth.grpc?.allowedHeaders).toEqual([]);
    const grant = only<K8sObject & { spec: { from: { kind: string; namespace: string }[]; to: { kind: string; name: string }[] } }>(objects, 'ReferenceGrant');
    expect(grant.metadata.namespace).toBe(namespace);
    expect(grant.spec.from).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: route.metadata.namespace }]);
    expect(grant.spec.to).toEqual([{ group: '', kind: 'Service', name: 'allowgate-authz' }]);
  });

  it('Istio: the mesh\'s extension provider names the gRPC service, and a CUSTOM AuthorizationPolicy at the ingress gateway uses it', () => {
    const objects = render('integrations/istio');
    type Mesh = K8sObject & { spec: { meshConfig: { extensionProviders: { name: string; envoyExtAuthzGrpc?: { service: string; port: number; timeout: string } }[] } } };
    const mesh = only<Mesh>(objects, 'IstioOperator');
    const providers = mesh.spec.meshConfig.extensionProviders;
    expect(providers).toHaveLength(1);
    expect(providers[0]!.envoyExtAuthzGrpc).toMatchObject({ service: host, port: portOf('grpc') });
    const policy = only<K8sObject & { spec: { action: string; provider: { name: string }; selector: { matchLabels: Record<string, string> }; rules: unknown[] } }>(objects, 'AuthorizationPolicy');
    expect(policy.apiVersion).toBe('security.istio.io/v1');
    expect(policy.spec.action).toBe('CUSTOM');
    expect(policy.spec.provider.name).toBe(providers[0]!.name);
    expect(policy.metadata.namespace).toBe('istio-system');
    expect(policy.spec.selector.matchLabels).toEqual({ istio: 'ingressgateway' });
    // One empty rule: every request is checked.
    expect(policy.spec.rules).toEqual([{}]);
  });
});
