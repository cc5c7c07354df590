import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { MessageStatus } from '../domain/message';
import type { MessageRepository } from '../store/messages';
import type { TenantRepository } from '../store/tenants';

/**
 * The worker's metrics (docs/operations.md, "Metrics"). One registry per process: the activities
 * that count (src/activities/tenant-health.ts) reach it without being handed it, and a test
 * process running several stacks shares it, as their counters only ever go up.
 */
export interface WorkerMetrics {
  registry: Registry;
  sent: Counter<'preset'>;
  failed: Counter<'preset'>;
  bounced: Counter<'preset'>;
  attempts: Counter<'class'>;
  healthChanges: Counter<'preset' | 'status'>;
  oldestWaiting: Gauge<'status'>;
  rateLimitWaiting: Gauge;
  tenants: Gauge<'health'>;
  refreshErrors: Counter;
}

/** Statuses of a message the service still owes an outcome; `scheduled` waits on purpose and is left out. */
export const WAITING_STATUSES: readonly MessageStatus[] = ['queued', 'waiting_rate_limit', 'waiting_credentials', 'retrying', 'sending'];

let instance: WorkerMetrics | null = null;

export function workerMetrics(): WorkerMetrics {
  if (instance) return instance;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cartero_worker_' });
  const registers = [registry];
  instance = {
    registry,
    sent: new Counter({
      name: 'cartero_messages_sent_total',
      help: 'Messages the tenant server accepted (sent or partially sent), by tenant preset',
      labelNames: ['preset'],
      registers,
    }),
    failed: new Counter({
      name: 'cartero_messages_failed_total',
      help: 'Messages that ended failed (refused for good, gave up, credentials never fixed), by tenant preset',
      labelNames: ['preset'],
      registers,
    }),
    bounced: new Counter({
      name: 'cartero_messages_bounced_total',
      help: 'Recipients refused at RCPT by the tenant server (hard bounces, suppressed), by tenant preset',
      labelNames: ['preset'],
      registers,
    }),
    attempts: new Counter({
      name: 'cartero_send_attempts_total',
      help: 'SMTP send attempts by reply class (accepted, transient, greylisted, throttled, permanent, auth, tls)',
      labelNames: ['class'],
      registers,
    }),
    healthChanges: new Counter({
      name: 'cartero_tenant_health_changes_total',
      help: 'Tenant health changes (each one a tenant.health event), by preset and new status',
      labelNames: ['preset', 'status'],
      registers,
    }),
    oldestWaiting: new Gauge({
      name: 'cartero_oldest_waiting_message_age_seconds',
      help: 'Age of the oldest message still waiting in each status (0: none); refreshed periodically from the store',
      labelNames: ['status'],
      registers,
    }),
    rateLimitWaiting: new Gauge({
      name: 'cartero_rate_limit_waiting_messages',
      help: 'Messages waiting for a rate-limit slot (counted up to 100000); refreshed periodically from the store',
      registers,
    }),
    tenants: new Gauge({
      name: 'cartero_tenants',
      help: 'Live tenants by health (healthy, degraded); refreshed periodically from the store',
      labelNames: ['health'],
      registers,
    }),
    refreshErrors: new Counter({
      name: 'cartero_worker_metrics_refresh_errors_total',
      help: 'Store gauge refreshes that failed (the gauges keep their last value)',
      registers,
    }),
  };
  return instance;
}

/**
 * The Temporal SDK metrics the dashboard (deploy/grafana/cartero.json) relies on. They come from the
 * Rust sdk-core the Node SDK runs on (sdk-core/crates/sdk-core/src/telemetry/metrics.rs; listed in
 * https://docs.temporal.io/references/sdk-metrics; the names are in the bundled
 * @temporalio/core-bridge binary), prefixed `temporal_` by the exporter and exported as
 * src/metrics/temporal-runtime.ts configures it: counters without a `_total` suffix, latencies as
 * histograms in seconds (`_bucket`, `_sum`, `_count`). Checked against a live worker of
 * @temporalio/worker 1.24.0 (labels: `worker_type`, `activity_type`, `workflow_type`, `task_queue`,
 * `namespace`). test/unit/grafana-dashboard.test.ts checks
 * every dashboard query against these names and the registries'.
 */
export const TEMPORAL_SDK_METRICS = [
  'temporal_workflow_task_schedule_to_start_latency',
  'temporal_activity_schedule_to_start_latency',
  'temporal_activity_execution_failed',
  'temporal_workflow_failed',
  'temporal_worker_task_slots_available',
  'temporal_sticky_cache_size',
] as const;

export interface StoreGaugeDeps {
  messages: MessageRepository;
  tenants: TenantRepository;
}

/** One refresh of the store gauges: a handful of bounded queries (one index lookup per status, two counts). */
export async function refreshStoreGauges(deps: StoreGaugeDeps, now = Date.now()): Promise<void> {
  const m = workerMetrics();
  const maxTimeMS = 5_000;
  try {
    const oldest = await Promise.all(WAITING_STATUSES.map(async (s) => [s, await deps.messages.oldestIn(s, maxTimeMS)] as const));
    for (const [status, at] of oldest) m.oldestWaiting.set({ status }, at ? Math.max(0, (now - at.getTime()) / 1000) : 0);
    m.rateLimitWaiting.set(await deps.messages.countIn('waiting_rate_limit', 100_000, maxTimeMS));
    const byHealth = await deps.tenants.countByHealth();
    for (const [health, n] of Object.entries(byHealth)) m.tenants.set({ health }, n);
  } catch {
    m.refreshErrors.inc();
  }
}

export interface WorkerMetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves /metrics on its own listener (loopback by default, like the API's METRICS_PORT): this
 * registry, followed by the Temporal SDK's own exposition when `temporalMetricsUrl` is set (one
 * scrape target per worker). Refreshes the store gauges every `refreshMs`, one refresh at a time.
 */
export async function startWorkerMetrics(
  deps: StoreGaugeDeps,
  opts: { port: number; host: string; refreshMs: number; temporalMetricsUrl?: string | null },
): Promise<WorkerMetricsServer> {
  const m = workerMetrics();
  let refreshing: Promise<void> | null = null;
  const refresh = () => {
    refreshing ??= refreshStoreGauges(deps).finally(() => (refreshing = null));
    return refreshing;
  };
  void refresh();
  const timer = setInterval(() => void refresh(), opts.refreshMs);
  timer.unref();
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    void (async () => {
      let body = await m.registry.metrics();
      if (opts.temporalMetricsUrl) {
        try {
          const r = await fetch(opts.temporalMetricsUrl, { signal: AbortSignal.timeout(2_000) });
          if (r.ok) body += '\n' + (await r.text());
        } catch {
          // The SDK's exporter is down or slow: Cartero's own series still go out.
        }
      }
      res.writeHead(200, { 'content-type': m.registry.contentType }).end(body);
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}/metrics`,
    async close() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
