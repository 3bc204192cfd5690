import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

/**
 * Kubernetes manifests for the deploy tests: rendered with `kubectl kustomize` (offline) where
 * kubectl is installed, or read as written from a kustomization's own files.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Metadata {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: Metadata;
  readonly [key: string]: unknown;
}
export interface Kustomization {
  readonly kind?: string;
  readonly resources?: readonly string[];
  readonly components?: readonly string[];
  readonly configMapGenerator?: readonly { readonly name: string; readonly files?: readonly string[] }[];
}

export function parseObjects(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as K8sObject | null;
    return value === null ? [] : [value];
  });
}

export function readYaml<T>(path: string): T {
  return parseYaml(readFileSync(path, 'utf8')) as T;
}

/**
 * A directory's own resources and generated ConfigMaps, without kustomize: what the base or a
 * component holds as written (ConfigMaps keep their names, without a content hash).
 */
export function asWritten(dir: string): K8sObject[] {
  const kustomization = readYaml<Kustomization>(join(dir, 'kustomization.yaml'));
  const objects = (kustomization.resources ?? []).flatMap((file) => parseObjects(readFileSync(join(dir, file), 'utf8'), file));
  for (const generator of kustomization.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const entry of generator.files ?? []) {
      const [key, file] = entry.includes('=') ? entry.split('=') as [string, string] : [basename(entry), entry];
      data[key] = readFileSync(join(dir, file), 'utf8');
    }
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data });
  }
  return objects;
}

export function kubectlAvailable(): boolean {
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 30_000 });
  return probe.status === 0;
}

export function kustomize(dir: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return parseObjects(text, `kubectl kustomize ${relative(ROOT, dir)}`);
}

/** Validates `object` against the Kubernetes API schema of its kind (kubernetes-models); throws on a mismatch. */
export async function validateAgainstSchema(object: K8sObject): Promise<void> {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') as [string, string] : [undefined, object.apiVersion];
  const specifier = group === 'monitoring.coreos.com'
    ? `@kubernetes-models/prometheus-operator/${group}/${version}/${object.kind}`
    : `kubernetes-models/${group === undefined ? '' : `${group}/`}${version}/${object.kind}`;
  let model: new (data: unknown) => { validate(): void };
  try {
    model = ((await import(specifier)) as Record<string, new (data: unknown) => { validate(): void }>)[object.kind]!;
  } catch (error) {
    throw new Error(`cannot load the schema model ${specifier} (${(error as Error).message}): the devDependencies kubernetes-models and @kubernetes-models/prometheus-operator must be installed (npm ci)`);
  }
  new model(object).validate();
}
