import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createApiMetrics } from '../../src/api/metrics';
import { TEMPORAL_SDK_METRICS, workerMetrics } from '../../src/metrics/worker';
import { observeAttempt, observeProbe } from '../../src/domain/tenant-health';

/**
 * deploy/grafana/cartero.json must only chart series that exist: every metric name in every panel's
 * PromQL is one the code registers (the worker's and the API's prom-client registries) or one of the
 * Temporal SDK metrics listed, with their source, in src/metrics/worker.ts. And the series an
 * operator acts on (the worker's delivery/health/waiting metrics, the API's accepted counter) are
 * all charted.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const dashboard = JSON.parse(readFileSync(path.join(root, 'deploy', 'grafana', 'cartero.json'), 'utf8')) as {
  panels: Array<{ title: string; targets?: Array<{ expr?: string }> }>;
};

/** Metric names in a PromQL expression: our two namespaces' identifiers (labels and functions never carry them). */
function metricNames(expr: string): string[] {
  // Label matchers and grouping lists hold label names and values, never metric names.
  const outside = expr
    .split(/[{}]/)
    .filter((_, i) => i % 2 === 0)
    .join(' ')
    .replace(/\b(?:by|without)\s*\([^)]*\)/g, '');
  return [...outside.matchAll(/\b(?:cartero|temporal)_\w+/g)].map((m) => m[0]);
}

async function registered(): Promise<{ names: Set<string>; histograms: Set<string> }> {
  const names = new Set<string>();
  const histograms = new Set<string>();
  for (const registry of [workerMetrics().registry, createApiMetrics().registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') histograms.add(m.name);
    }
  }
  for (const name of TEMPORAL_SDK_METRICS) {
    names.add(name);
    // The SDK's latencies are histograms (see TEMPORAL_SDK_METRICS).
    if (name.endsWith('_latency')) histograms.add(name);
  }
  return { names, histograms };
}

function exists(name: string, reg: { names: Set<string>; histograms: Set<string> }): boolean {
  if (reg.names.has(name)) return true;
  const base = name.replace(/_(?:bucket|sum|count)$/, '');
  return base !== name && reg.histograms.has(base);
}

test('every dashboard panel queries only metrics the code registers or the Temporal SDK exports', async () => {
  const reg = await registered();
  assert.ok(dashboard.panels.length > 0);
  for (const panel of dashboard.panels) {
    const exprs = (panel.targets ?? []).map((t) => t.expr ?? '');
    assert.ok(exprs.length > 0, `panel "${panel.title}" has no query`);
    for (const expr of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `panel "${panel.title}": no metric in ${expr}`);
      for (const name of names) assert.ok(exists(name, reg), `panel "${panel.title}": ${name} is not a registered metric`);
    }
  }
});

test('the check itself refuses a misspelt metric and a histogram suffix on a counter', async () => {
  const reg = await registered();
  assert.equal(exists('cartero_messages_sentt_total', reg), false);
  assert.equal(exists('cartero_messages_sent_total_bucket', reg), false);
  assert.equal(exists('cartero_http_request_duration_seconds_bucket', reg), true);
  assert.deepEqual(metricNames('sum by (preset) (rate(cartero_messages_sent_total{preset="cartero_x"}[5m]))'), [
    'cartero_messages_sent_total',
  ]);
});

test('every series an operator acts on is charted', () => {
  const charted = new Set(dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr ?? ''))));
  const m = workerMetrics();
  const required = [
    m.sent,
    m.failed,
    m.bounced,
    m.attempts,
    m.healthChanges,
    m.oldestWaiting,
    m.rateLimitWaiting,
    m.tenants,
    m.refreshErrors,
  ].map((x) => (x as unknown as { name: string }).name);
  required.push('cartero_messages_accepted_total', ...TEMPORAL_SDK_METRICS.map((n) => (n.endsWith('_latency') ? `${n}_bucket` : n)));
  for (const name of required) assert.ok(charted.has(name), `${name} is not on the dashboard`);
});

test('health observations: only auth/TLS failures and successes say something about the setup', () => {
  assert.deepEqual(observeAttempt('accepted', '250 ok'), { kind: 'ok', source: 'send' });
  assert.equal(observeAttempt('transient', '421 busy'), null);
  assert.equal(observeAttempt('permanent', '554 no'), null);
  assert.equal(observeAttempt('throttled', '421 4.7.0'), null);
  assert.match((observeAttempt('auth', '535 5.7.8 bad') as { reason: string }).reason, /^authentication refused: 535/);
  assert.match((observeAttempt('tls', 'cert') as { reason: string }).reason, /^TLS or settings failed/);
  assert.deepEqual(observeProbe({ ok: true }), { kind: 'ok', source: 'verify' });
  assert.deepEqual(observeProbe({ ok: false, failedStep: 'auth', error: '535 no' }), {
    kind: 'failed',
    source: 'verify',
    reason: 'verify failed at auth: 535 no',
  });
});
