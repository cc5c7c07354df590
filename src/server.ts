import type { Server } from 'node:http';
import { createApp } from './api/app';
import { createApiMetrics } from './api/metrics';
import { createOpsApp } from './api/routes/ops';
import { baseDeps, openStore, packageVersion, retrying } from './bootstrap';
import { configureParsePool } from './inbound/parse-pool';
import { connectTemporal, ensureSearchAttributes } from './temporal/connection';
import { WebhookDispatcher } from './temporal/webhook-dispatch';
import { createTracking } from './api/tracking';
import { caseHitNotifier } from './cases/record';

/** API process: Express on PORT, talking to the store and Temporal. */
async function main(): Promise<void> {
  const { config, logger, keyring } = baseDeps('api');
  // Received mail is parsed and classified on worker threads, never on this event loop.
  configureParsePool(config.inbound.parse);
  const repos = await openStore(config, keyring, logger);
  const { store, tenants, events, cases } = repos;
  const { connection, client: temporal } = await retrying('Temporal', logger, () => connectTemporal(config, keyring));

  // A fresh self-hosted cluster lacks Cartero's search attributes; Temporal Cloud refuses the
  // operator call (create them in its console), which is only worth a warning.
  await ensureSearchAttributes(temporal).catch((err: unknown) =>
    logger.warn(
      { err: (err as Error).message },
      'could not register search attributes; create TenantId, CaseId, MessageId, SendStatus (Keyword) by hand',
    ),
  );

  // Events appended by the API (test events, tracking hits) go to their tenant's delivery workflow.
  const webhookDispatcher = new WebhookDispatcher({
    events,
    tenants,
    client: temporal,
    taskQueue: config.temporal.taskQueue,
    warn: (msg, fields) => logger.warn(fields, msg),
  });
  events.setAppendListener((tenantId) => webhookDispatcher.notify(tenantId));
  events.setHandoverFilter((tenantId) => webhookDispatcher.wantsHandover(tenantId));

  let shuttingDown = false;
  // Human opens and clicks reach the message's case; hit events go through the same outbox listener.
  const tracking = createTracking(config, logger, repos, keyring, {
    onHumanHit: caseHitNotifier({ cases, events, temporal, taskQueue: config.temporal.taskQueue }),
  });
  const metrics = createApiMetrics();
  const isShuttingDown = () => shuttingDown;
  const app = createApp({
    ...repos,
    metrics,
    tracking,
    config,
    logger,
    temporal,
    temporalConnection: connection,
    keyring,
    version: packageVersion(),
    isShuttingDown,
  });
  const server: Server = app.listen(config.http.port, config.http.host, () => {
    logger.info({ port: config.http.port, host: config.http.host }, 'API listening');
  });
  server.keepAliveTimeout = 65_000;
  // Metrics and the detailed readiness on their own listener, loopback unless configured otherwise.
  const metricsConfig = config.metrics;
  const opsServer: Server | null = metricsConfig
    ? createOpsApp({
        store,
        temporalCheck: () => connection.healthService.check({}),
        version: packageVersion(),
        isShuttingDown,
        registry: metrics.registry,
      }).listen(metricsConfig.port, metricsConfig.host, () => {
        logger.info({ port: metricsConfig.port, host: metricsConfig.host }, 'metrics listening (/metrics, /readyz)');
      })
    : null;

  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'API shutting down: finishing in-flight requests');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => {
      logger.warn('grace period over; closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    await closed;
    clearTimeout(timer);
    opsServer?.closeAllConnections();
    opsServer?.close();
    // Queued tracking hits are written now, or spilled to TRACKING_SPOOL_DIR if the store is down.
    await tracking.close().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'tracking buffer close failed'));
    await Promise.allSettled([store.close(), connection.close()]);
    logger.info('API stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`cartero api: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
