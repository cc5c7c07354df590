import { Runtime } from '@temporalio/worker';
import type { Config } from '../config/env';

/**
 * Installs the Temporal runtime of the worker process with shutdown on SIGINT/SIGTERM (worker.run()
 * drains) and, unless TEMPORAL_METRICS_PORT=0 or the worker's /metrics is off, the SDK's Prometheus
 * exporter on loopback; the worker's /metrics appends its exposition. Returns that exporter's URL.
 */
export function installWorkerRuntime(config: Pick<Config, 'workerMetrics'>): string | null {
  const port = config.workerMetrics?.temporalPort ?? null;
  if (port === null) {
    Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
    return null;
  }
  Runtime.install({
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    // Seconds, as Prometheus conventions (and the dashboard) expect; counters keep the SDK's names.
    telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${port}`, useSecondsForDurations: true } } },
  });
  return `http://127.0.0.1:${port}/metrics`;
}
