import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { scratchPerTest } from '../../support/scratch.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MONITORING = join(ROOT, 'k8s', 'monitoring');
const scratch = scratchPerTest();
/** The runbook links' base, as k8s/monitoring/runbooks.yaml sets it. */
const RUNBOOK_BASE = (parse(readFileSync(join(MONITORING, 'runbooks.yaml'), 'utf8')) as { data: { base: string } }).data.base;

// The gateway's metrics, by type: the names the dashboard, the alerts and docs/monitoring.md use.
const COUNTERS = [
  'allowgate_requests_total',
  'allowgate_account_requests_total',
  'allowgate_upstream_errors_total',
  'allowgate_upstream_responses_total',
  'allowgate_cache_hits_total',
  'allowgate_cache_misses_total',
  'allowgate_cache_evictions_total',
  'allowgate_cache_stale_served_total',
  'allowgate_store_errors_total',
  'allowgate_admin_requests_total',
  'allowgate_lockout_warnings_total',
  'allowgate_validation_refusals_total',
  'allowgate_shed_requests_total',
  'allowgate_store_write_failures_total',
  'allowgate_key_lookups_total',
  'allowgate_introspection_requests_total',
];
const GAUGES = [
  'allowgate_cache_entries',
  'allowgate_cache_bytes',
  'allowgate_rules_loaded',
  'allowgate_store_up',
  'allowgate_store_last_sync_timestamp_seconds',
  'allowgate_upstream_in_flight',
  'allowgate_upstream_queued',
  'allowgate_proxy_connections',
  'allowgate_proxy_connections_limit',
  'allowgate_build_info',
  'allowgate_cache_refusing_accounts',
  'allowgate_key_cache_entries',
  'allowgate_introspection_cache_entries',
];
const HISTOGRAMS = [
  'allowgate_request_duration_seconds',
  'allowgate_decision_duration_seconds',
  'allowgate_compile_duration_seconds',
  'allowgate_store_operation_duration_seconds',
  'allowgate_propagation_lag_seconds',
  'allowgate_introspection_duration_seconds',
];
const ALLOWGATE_METRICS = [...COUNTERS, ...GAUGES, ...HISTOGRAMS];

const withSeries = (name: string, type: string): string[] =>
  type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name, `${name}_sum`, `${name}_count`] : [name];

/** Every series name a query may use: ours, prom-client's defaults (as this version exports them) and `up`. */
async function allowedSeries(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const defaults = await registry.getMetricsAsJSON();
  registry.clear();
  expect(defaults.length).toBeGreaterThan(10);
  const allowed = new Set([
    ...COUNTERS, ...GAUGES, ...HISTOGRAMS.flatMap((name) => withSeries(name, 'histogram')),
    // The typings say MetricType (an enum); at run time `type` is the exposition name (`histogram`).
    ...defaults.flatMap((m) => withSeries(m.name, String(m.type))),
    'up',
  ]);
  expect(allowed.has('nodejs_gc_duration_seconds_bucket')).toBe(true);
  return allowed;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/**
 * The series names a PromQL expression selects: identifiers left once strings, label matchers,
 * ranges and grouping clauses are removed, minus function names (followed by `(`) and keywords.
 * Anything left that is not a name (a stray `$variable`) shows up as a name and fails the check.
 */
function seriesNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/#.*$/gm, '')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  const token = /[A-Za-z_:][A-Za-z0-9_:]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-z]*|\S/g;
  for (let m = token.exec(bare); m !== null; m = token.exec(bare)) {
    const word = m[0];
    if (!/^[A-Za-z_:]/.test(word) || KEYWORDS.has(word.toLowerCase())) continue;
    if (/^\s*\(/.test(bare.slice(token.lastIndex))) continue;
    names.push(word);
  }
  return names;
}

/** GitHub's anchor for a Markdown heading. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');
}

function docAnchors(): Set<string> {
  const text = readFileSync(join(ROOT, 'docs', 'monitoring.md'), 'utf8');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)));
}

function hasTool(command: string, args: string[]): boolean {
  return spawnSync(command, args, { encoding: 'utf8' }).status === 0;
}

interface Target { readonly refId: string; readonly expr: string; readonly datasource?: { readonly uid?: string } }
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly targets?: readonly Target[];
}
interface Variable { readonly name: string; readonly type: string; readonly query?: unknown; readonly definition?: string; readonly datasource?: { readonly uid?: string } }
interface Dashboard {
  readonly title: string;
  readonly uid: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
}

function dashboard(): Dashboard {
  return JSON.parse(readFileSync(join(MONITORING, 'allowgate-dashboard.json'), 'utf8')) as Dashboard;
}

const queryPanels = (d: Dashboard): Panel[] => d.panels.filter((p) => p.type !== 'row');
const expressions = (d: Dashboard): { panel: string; expr: string }[] =>
  queryPanels(d).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title ?? '', expr: t.expr })));

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleGroup { readonly name: string; readonly rules: readonly Rule[] }

function alertGroups(): RuleGroup[] {
  return (parse(readFileSync(join(MONITORING, 'alerts.yaml'), 'utf8')) as { groups: RuleGroup[] }).groups;
}

const alerts = (): Rule[] => alertGroups().flatMap((g) => g.rules.filter((r) => r.alert !== undefined));

const REQUIRED_ALERTS = [
  'AllowgateStoreDown',
  'AllowgateDenySpike',
  'AllowgateOverheadHigh',
  'AllowgateUpstreamErrors',
  'AllowgatePropagationLagHigh',
  'AllowgateNotScraped',
  'AllowgateMetricsAbsent',
];

describe('metric names', () => {
  it('are the ones the gateway defines, every one of them', () => {
    const source = readFileSync(join(ROOT, 'src', 'observability', 'metrics.ts'), 'utf8');
    const defined = new Set([...source.matchAll(/'(allowgate_[a-z_]+)'/g)].map((m) => m[1]!));
    expect([...defined].sort()).toEqual([...ALLOWGATE_METRICS].sort());
  });

  it('are each described in docs/monitoring.md', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'monitoring.md'), 'utf8');
    expect(ALLOWGATE_METRICS.filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });

  it('are found in PromQL by the checker the dashboard and alert tests use', () => {
    expect(seriesNames('histogram_quantile(0.99, sum by (le, pod) (rate(allowgate_decision_duration_seconds_bucket{pod=~"$pod"}[$__rate_interval]))) > 5e-3')).toEqual(['allowgate_decision_duration_seconds_bucket']);
    expect(seriesNames('sum(rate(a_total{x="y z"}[5m] offset 1h)) / on (namespace) group_left b and ignoring (le) c or time() - d unless bool e')).toEqual(['a_total', 'b', 'c', 'd', 'e']);
    expect(seriesNames('sum(rate(x[$__range])) + $oops')).toEqual(['x', 'oops']);
  });
});

describe('Grafana dashboard (k8s/monitoring/allowgate-dashboard.json)', () => {
  it('has a prometheus datasource variable and namespace/pod variables that use it', async () => {
    const d = dashboard();
    expect(d.title).toBe('allowgate');
    expect(d.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    const vars = new Map(d.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const allowed = await allowedSeries();
    for (const name of ['namespace', 'pod']) {
      const v = vars.get(name);
      expect(v, name).toMatchObject({ type: 'query', datasource: { uid: '${datasource}' } });
      const query = typeof v!.query === 'string' ? v!.query : (v!.query as { query: string }).query;
      const m = /^label_values\((.+), (\w+)\)$/.exec(query);
      expect(m?.[2], query).toBe(name);
      expect(seriesNames(m![1]!).filter((s) => !allowed.has(s))).toEqual([]);
    }
  });

  it('gives every panel a title and at least one query through $datasource', () => {
    const d = dashboard();
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels) {
      expect(p.title?.trim(), `panel ${p.id}`).toBeTruthy();
      if (p.type === 'row') {
        // Rows only group the panels under them: a title, no queries.
        expect(p.targets ?? []).toEqual([]);
        continue;
      }
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThanOrEqual(1);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets!) {
        expect(t.datasource?.uid, p.title).toBe('${datasource}');
        expect(t.expr.trim(), p.title).not.toBe('');
        expect(t.expr, p.title).toContain('namespace=~"$namespace"');
        expect(t.expr, p.title).toContain('pod=~"$pod"');
      }
    }
    expect(queryPanels(d).length).toBeGreaterThanOrEqual(20);
  });

  it('lays panels out on the 24-column grid without overlaps', () => {
    const taken = new Map<string, string>();
    for (const p of dashboard().panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${p.title} ${JSON.stringify(p.gridPos)}`).toBe(true);
      for (let col = x; col < x + w; col++) {
        for (let line = y; line < y + h; line++) {
          const key = `${col},${line}`;
          expect(taken.get(key), `${p.title} overlaps`).toBeUndefined();
          taken.set(key, p.title ?? '');
        }
      }
    }
  });

  it('queries only the gateway\'s metrics and prom-client\'s defaults', async () => {
    const allowed = await allowedSeries();
    const unknown = expressions(dashboard()).flatMap(({ panel, expr }) => seriesNames(expr).filter((s) => !allowed.has(s)).map((s) => `${panel}: ${s}`));
    expect(unknown).toEqual([]);
  });

  it('covers decisions, denials, overhead, upstream, cache, store, propagation, sync and management', () => {
    const d = dashboard();
    const used = new Set(expressions(d).flatMap(({ expr }) => seriesNames(expr)));
    const needed = [
      'allowgate_requests_total', 'allowgate_decision_duration_seconds_bucket', 'allowgate_request_duration_seconds_bucket',
      'allowgate_upstream_errors_total', 'allowgate_upstream_responses_total',
      'allowgate_cache_hits_total', 'allowgate_cache_misses_total', 'allowgate_cache_entries', 'allowgate_cache_bytes', 'allowgate_cache_evictions_total',
      'allowgate_store_up', 'allowgate_store_errors_total', 'allowgate_propagation_lag_seconds_bucket', 'allowgate_store_last_sync_timestamp_seconds',
      'allowgate_admin_requests_total', 'allowgate_validation_refusals_total', 'allowgate_lockout_warnings_total',
    ];
    expect(needed.filter((name) => !used.has(name))).toEqual([]);
    const overhead = expressions(d).filter(({ expr }) => expr.includes('allowgate_decision_duration_seconds_bucket')).map(({ expr }) => expr);
    expect(overhead.some((e) => e.startsWith('histogram_quantile(0.5,'))).toBe(true);
    expect(overhead.some((e) => e.startsWith('histogram_quantile(0.99,'))).toBe(true);
    const denials = expressions(d).find(({ panel }) => /denials by reason/i.test(panel));
    expect(denials?.expr).toMatch(/sum by \(reason\) .*decision="deny"/);
  });
});

describe('alert rules (k8s/monitoring/alerts.yaml, prometheusrule.yaml)', () => {
  it('define each alert with a duration, a severity, a summary, a description and a runbook in the docs', async () => {
    const all = alerts();
    const names = all.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    expect(REQUIRED_ALERTS.filter((name) => !names.includes(name))).toEqual([]);
    const anchors = docAnchors();
    const allowed = await allowedSeries();
    for (const a of all) {
      expect(a.for, a.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info'], a.alert).toContain(a.labels?.['severity']);
      expect(a.annotations?.['summary']?.trim(), a.alert).toBeTruthy();
      expect(a.annotations?.['description']?.trim(), a.alert).toBeTruthy();
      const runbook = a.annotations?.['runbook_url'] ?? '';
      // Absolute, so it works from Alertmanager, chat and pagers: the configurable base plus the anchor.
      expect(runbook, a.alert).toBe(`${RUNBOOK_BASE}#${a.alert!.toLowerCase()}`);
      expect(runbook).toMatch(/^https:\/\//);
      expect(anchors.has(runbook.split('#')[1]!), `docs/monitoring.md has no heading for ${a.alert}`).toBe(true);
      expect(seriesNames(a.expr).filter((s) => !allowed.has(s)), a.alert).toEqual([]);
    }
  });

  it('say what the brief asked for in each required expression', () => {
    const byName = new Map(alerts().map((a) => [a.alert, a]));
    expect(byName.get('AllowgateStoreDown')).toMatchObject({ expr: 'allowgate_store_up == 0', for: '1m' });
    const spike = byName.get('AllowgateDenySpike')!.expr;
    expect(spike).toContain('decision="deny"');
    expect(spike).toMatch(/offset 1h/);
    expect(spike).toMatch(/\) > 1\s*$/);
    expect(byName.get('AllowgateOverheadHigh')).toMatchObject({ for: '10m' });
    expect(byName.get('AllowgateOverheadHigh')!.expr).toMatch(/histogram_quantile\(0\.99, sum by \([^)]*\ble\b[^)]*\) \(rate\(allowgate_decision_duration_seconds_bucket\[5m\]\)\)\) > 0\.005/);
    expect(byName.get('AllowgateUpstreamErrors')!.expr).toContain('allowgate_upstream_errors_total');
    expect(byName.get('AllowgatePropagationLagHigh')!.expr).toContain('allowgate_propagation_lag_seconds_bucket');
    expect(byName.get('AllowgateNotScraped')!.expr).toMatch(/^up\{[^}]*\} == 0$/);
    expect(byName.get('AllowgateMetricsAbsent')!.expr).toMatch(/^absent\(/);
  });

  it('are the same rules in the PrometheusRule as in the plain rules file', () => {
    const resource = parse(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as {
      apiVersion: string; kind: string; metadata: { name: string }; spec: { groups: RuleGroup[] };
    };
    expect(resource.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(resource.kind).toBe('PrometheusRule');
    expect(resource.metadata.name).toBe('allowgate');
    expect(resource.spec.groups).toEqual(alertGroups());
  });

  it('are packaged with the dashboard by k8s/monitoring/kustomization.yaml', () => {
    const k = parse(readFileSync(join(MONITORING, 'kustomization.yaml'), 'utf8')) as {
      resources: string[]; configMapGenerator: { name: string; files: string[]; options: { labels: Record<string, string> } }[];
    };
    expect(k.resources).toEqual(['prometheusrule.yaml', 'runbooks.yaml']);
    expect(k.configMapGenerator[0]).toMatchObject({ name: 'allowgate-dashboard', files: ['allowgate-dashboard.json'], options: { labels: { grafana_dashboard: '1' } } });
    for (const file of [...k.resources, ...k.configMapGenerator.flatMap((g) => g.files)]) expect(existsSync(join(MONITORING, file)), file).toBe(true);
    // kubectl is optional (.ci/run installs it where it can); with it, the kustomization must render.
    if (hasTool('kubectl', ['version', '--client'])) {
      const rendered = spawnSync('kubectl', ['kustomize', MONITORING], { encoding: 'utf8' });
      expect(rendered.stderr).toBe('');
      expect(rendered.status).toBe(0);
      const kinds = rendered.stdout.split(/^---$/m).map((doc) => (parse(doc) as { kind: string; metadata: { name: string } })).map((o) => `${o.kind}/${o.metadata.name}`);
      // The runbook base's ConfigMap is read by kustomize, never applied.
      expect(kinds.sort()).toEqual(['ConfigMap/allowgate-dashboard', 'PrometheusRule/allowgate']);
    }
  });

  it(`link their runbooks under the base that k8s/monitoring/runbooks.yaml sets${hasTool('kubectl', ['version', '--client']) ? '' : ' (kubectl is not installed: the files as written)'}`, () => {
    const links = (text: string): string[] => [...text.matchAll(/runbook_url: (\S+)/g)].map((m) => m[1]!);
    for (const file of ['alerts.yaml', 'prometheusrule.yaml']) {
      for (const link of links(readFileSync(join(MONITORING, file), 'utf8'))) expect(link.startsWith(`${RUNBOOK_BASE}#`), `${file}: ${link}`).toBe(true);
    }
    if (!hasTool('kubectl', ['version', '--client'])) return;
    // Another base, rendered: every link follows it, anchors kept.
    const dir = scratch();
    for (const file of ['kustomization.yaml', 'prometheusrule.yaml', 'allowgate-dashboard.json']) writeFileSync(join(dir, file), readFileSync(join(MONITORING, file)));
    writeFileSync(join(dir, 'runbooks.yaml'), readFileSync(join(MONITORING, 'runbooks.yaml'), 'utf8').replace(RUNBOOK_BASE, 'https://wiki.internal/ops/allowgate'));
    const rendered = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
    expect(rendered.status, rendered.stderr).toBe(0);
    const renderedLinks = links(rendered.stdout);
    expect(renderedLinks).toHaveLength(alerts().length);
    for (const [i, a] of alerts().entries()) expect(renderedLinks[i]).toBe(`https://wiki.internal/ops/allowgate#${a.alert!.toLowerCase()}`);
  });

  it('pass promtool check rules and their unit tests, and every dashboard query parses', () => {
    // Without promtool only these structural checks run: the unit-test file points at the rules
    // and gives every alert a case where it fires. CI installs promtool (Debian package
    // prometheus), and wherever it is on PATH the promtool part below runs too: never skipped.
    const unit = parse(readFileSync(join(MONITORING, 'alerts.test.yaml'), 'utf8')) as {
      rule_files: string[];
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    expect(unit.rule_files).toEqual(['alerts.yaml']);
    const cases = unit.tests.flatMap((t) => t.alert_rule_test);
    const firing = new Set(cases.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname));
    const silent = new Set(cases.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname));
    const names = alerts().map((a) => a.alert!);
    expect(names.filter((name) => !firing.has(name) || !silent.has(name))).toEqual([]);

    if (!hasTool('promtool', ['--version'])) return;

    const check = spawnSync('promtool', ['check', 'rules', 'k8s/monitoring/alerts.yaml'], { cwd: ROOT, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toContain(`SUCCESS: ${alertGroups().flatMap((g) => g.rules).length} rules found`);
    expect(check.status).toBe(0);

    const test = spawnSync('promtool', ['test', 'rules', 'k8s/monitoring/alerts.test.yaml'], { cwd: ROOT, encoding: 'utf8' });
    expect(`${test.stdout}${test.stderr}`).toContain('SUCCESS');
    expect(test.status, `${test.stdout}${test.stderr}`).toBe(0);

    // The dashboard's queries, with Grafana's variables filled in, as recording rules: promtool
    // parses each one as PromQL.
    const rules = queryPanels(dashboard()).flatMap((p) => (p.targets ?? []).map((t) => ({
      record: `dashboard:panel_${p.id}:${t.refId}`,
      expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1h').replaceAll('$namespace', '.*').replaceAll('$pod', '.*'),
    })));
    const file = join(scratch(), 'dashboard-queries.yaml');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const queries = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(`${queries.stdout}${queries.stderr}`).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(queries.status).toBe(0);
  });
});
