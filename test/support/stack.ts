import { startWorkerMetrics, type WorkerMetricsServer } from '../../src/metrics/worker';
import { deleteTenantHealthSchedule } from '../../src/temporal/handoffs/verify-connection';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { createApp, type AppDeps } from '../../src/api/app';
import { createApiMetrics } from '../../src/api/metrics';
import { createOpsApp } from '../../src/api/routes/ops';
import { repositories, type StoreDeps } from '../../src/store/repositories';
import { loadConfig, type Config } from '../../src/config/env';
import { configureParsePool } from '../../src/inbound/parse-pool';
import { createLogger } from '../../src/logging';
import { Keyring } from '../../src/security/crypto';
import { connectStore, ensureIndexes, type Store } from '../../src/store/mongo';
import { upgradeLegacySeals } from '../../src/store/seal-upgrade';
import type { MessageRepository } from '../../src/store/messages';
import type { SuppressionRepository } from '../../src/store/suppressions';
import type { TenantRepository } from '../../src/store/tenants';
import type { EventRepository } from '../../src/store/events';
import type { WebhookDeliveryRepository } from '../../src/store/webhook-deliveries';
import { ensureWebhookSweeper, webhookSweeperWorkflowId } from '../../src/temporal/handoffs/webhook-delivery';
import { connectTemporal, connectWorkerConnection } from '../../src/temporal/connection';
import { createWorker, type CarteroWorkers } from '../../src/worker';
import { eventually } from './smtp-peer';
import { createTracking, type Tracking } from '../../src/api/tracking';
import { caseHitNotifier } from '../../src/cases/record';

/**
 * The whole service in the test process, against the real servers run-tests.ts started: the API on
 * a random port and a worker on its own task queues (control and send), with a database of its own. Nothing is faked.
 */
export interface Stack {
  baseUrl: string;
  /** The operators' listener (/metrics, detailed /readyz), on loopback as in production. */
  metricsUrl: string;
  /** The worker's /metrics (src/metrics/worker.ts) on a free loopback port; null without a worker. */
  workerMetricsUrl: string | null;
  adminKey: string;
  config: Config;
  store: Store;
  tenants: TenantRepository;
  messages: MessageRepository;
  suppressions: SuppressionRepository;
  events: EventRepository;
  webhookDeliveries: WebhookDeliveryRepository;
  temporal: Client;
  keyring: Keyring;
  env: Record<string, string>;
  tracking: Tracking;
  /** Every repository, for tests that look at what was stored. */
  repos: StoreDeps;
  /** The API's HTTP server, for tests that measure what it read off its sockets. */
  server: Server;
  /** The worker's two Workers, its SMTP pools and send gate (null with `worker: false`). */
  workers: CarteroWorkers | null;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const temporal = process.env.CARTERO_TEST_TEMPORAL_ADDRESS;
  const mongo = process.env.CARTERO_TEST_MONGODB_URI;
  if (!temporal || !mongo) {
    throw new Error('integration tests need CARTERO_TEST_TEMPORAL_ADDRESS and CARTERO_TEST_MONGODB_URI: run them with `npm test`');
  }
  const id = randomBytes(4).toString('hex');
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    CARTERO_ADMIN_KEY: `cadm_test_${randomBytes(24).toString('base64url')}`,
    CARTERO_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    MONGODB_URI: mongo,
    MONGODB_DB: `test_${id}`,
    TEMPORAL_ADDRESS: temporal,
    TEMPORAL_TASK_QUEUE: `test-${id}`,
    SMTP_ALLOW_PRIVATE_NETWORKS: 'loopback',
    SMTP_VERIFY_TIMEOUT_MS: '5000',
    // A deleted tenant's id is free again within seconds (its second pass has nothing to wait for here).
    TENANT_DELETION_SETTLE_MS: '500',
    // Each stack spills tracking hits to its own directory (never another suite's).
    TRACKING_SPOOL_DIR: path.join(os.tmpdir(), `cartero-test-spool-${id}`),
    // Tests read the worker's store gauges soon after a change (production refreshes every 30 s).
    WORKER_METRICS_REFRESH_MS: '1000',
    ...overrides,
  };
}

export async function startStack(
  overrides: Record<string, string> = {},
  options: {
    worker?: boolean;
    app?: Pick<AppDeps, 'snsCertFetcher' | 'snsConfirm' | 'brevoAttachment'>;
    /** The driver emits command events on `store.client` (bench/send counts store commands). */
    monitorCommands?: boolean;
    /** Fault injection: the API's Temporal client (the worker keeps the real one). */
    apiTemporal?: (client: Client) => Client;
  } = {},
): Promise<Stack> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const env = testEnv(overrides);
  const config = loadConfig(env);
  // As server.ts and worker.ts do: INBOUND_PARSE_* overrides reach the parse pool.
  configureParsePool(config.inbound.parse);
  const logger = createLogger(config.logLevel, 'test');
  const keyring = new Keyring(config.encryption.keys, config.encryption.activeKeyId);
  const store = await connectStore(config.mongo.uri, config.mongo.db, config.mongo.maxPoolSize, {
    monitorCommands: options.monitorCommands ?? false,
  });
  await ensureIndexes(store.db);
  const repos = repositories(store, keyring, config.tenants.cacheMs, config.mongo.coalesceWrites);
  // As every process does at start (src/bootstrap.ts openStore).
  await upgradeLegacySeals(repos, () => undefined);
  const { tenants } = repos;
  const { connection, client } = await connectTemporal(config, keyring);
  const workerConnection: NativeConnection = await connectWorkerConnection(config);
  let worker: CarteroWorkers | null = null;
  let running: Promise<void> = Promise.resolve();
  let workerMetricsServer: WorkerMetricsServer | null = null;
  if (options.worker !== false) {
    worker = await createWorker({ ...repos, config, keyring, client, connection: workerConnection });
    running = worker.run();
    workerMetricsServer = await startWorkerMetrics(repos, {
      port: 0,
      host: '127.0.0.1',
      refreshMs: config.workerMetrics?.refreshMs ?? 1000,
    });
    await ensureWebhookSweeper(client, config.temporal.taskQueue);
  }
  const tracking = createTracking(config, logger, repos, keyring, {
    onHumanHit: caseHitNotifier({ cases: repos.cases, events: repos.events, temporal: client, taskQueue: config.temporal.taskQueue }),
  });
  const metrics = createApiMetrics();
  const app = createApp({
    ...repos,
    metrics,
    tracking,
    config,
    logger,
    temporal: options.apiTemporal ? options.apiTemporal(client) : client,
    temporalConnection: connection,
    keyring,
    version: 'test',
    ...options.app,
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  const opsServer: Server = await new Promise((resolve) => {
    const s = createOpsApp({
      store,
      temporalCheck: () => connection.healthService.check({}),
      version: 'test',
      isShuttingDown: () => false,
      registry: metrics.registry,
    }).listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${(opsServer.address() as AddressInfo).port}`,
    workerMetricsUrl: workerMetricsServer?.url ?? null,
    adminKey: config.adminKey,
    config,
    store,
    tenants,
    messages: repos.messages,
    suppressions: repos.suppressions,
    events: repos.events,
    webhookDeliveries: repos.webhookDeliveries,
    temporal: client,
    keyring,
    env,
    tracking,
    repos,
    server,
    workers: worker,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      opsServer.closeAllConnections();
      await new Promise<void>((r) => opsServer.close(() => r()));
      // The sweeper outlives its worker otherwise, waking on a task queue nobody polls.
      if (worker)
        await client.workflow
          .getHandle(webhookSweeperWorkflowId(config.temporal.taskQueue))
          .terminate()
          .catch(() => undefined);
      await tracking.close();
      await workerMetricsServer?.close();
      // Tenants' health-check schedules outlive the stack otherwise (the dev server is shared).
      for (const t of await store.db
        .collection('tenants')
        .find({}, { projection: { _id: 1 } })
        .toArray()) {
        await deleteTenantHealthSchedule(client, config.temporal.taskQueue, String(t._id)).catch(() => undefined);
      }
      worker?.shutdown();
      await running;
      worker?.pools.closeAll();
      await workerConnection.close();
      await connection.close();
      await store.db.dropDatabase().catch(() => undefined);
      await store.close();
    },
  };
}

/** fetch against the stack with a JSON body and a bearer key; returns status, headers and parsed body. */
export async function api(
  stack: Pick<Stack, 'baseUrl'>,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; rawBody?: string; contentType?: string } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = {};
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) {
    body = opts.rawBody;
    headers['content-type'] = opts.contentType ?? 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = opts.contentType ?? 'application/json';
  }
  const res = await fetch(stack.baseUrl + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Creates a tenant (admin key) that sends to an SMTP peer on this machine; returns its API key. */
export async function createPeerTenant(
  stack: Pick<Stack, 'baseUrl' | 'adminKey'>,
  id: string,
  peer: { port: number },
  caCert: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: id,
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: peer.port, security: 'starttls', tls: { ca: caCert } },
      auth: { type: 'password', user: 'u', password: 'p' },
      ...extra,
    },
  });
  if (r.status !== 201) throw new Error(`creating tenant ${id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.apiKey as string;
}

/** Polls a message (with the tenant's key) until it reaches one of `statuses`; returns its view. */
export async function messageUntil(
  stack: Pick<Stack, 'baseUrl'>,
  key: string,
  id: string,
  statuses: string[],
  timeoutMs = 30_000,
): Promise<any> {
  return eventually(
    async () => {
      const r = await api(stack, 'GET', `/v1/messages/${id}`, { key });
      return statuses.includes(r.body.status) ? r.body : undefined;
    },
    timeoutMs,
    `message ${id} to reach ${statuses.join('|')}`,
  );
}
