import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import { caseFeedbackSignaller } from './cases/record';
import { OAuthAccess } from './activities/oauth-access';
import { SendGate } from './activities/send-gate';
import { SmtpPools } from './activities/smtp-transport';
import { OAuthProviders } from './oauth/providers';
import { baseDeps, openStore, retrying } from './bootstrap';
import { configureParsePool } from './inbound/parse-pool';
import type { StoreDeps } from './store/repositories';
import type { Config } from './config/env';
import type { Keyring } from './security/crypto';
import { connectTemporal, connectWorkerConnection, dataConverter } from './temporal/connection';
import { WebhookDispatcher } from './temporal/webhook-dispatch';
import { ensureWebhookSweeper } from './temporal/handoffs/webhook-delivery';
import { retireLegacyCaseWorkflows } from './temporal/handoffs/case';
import { ensureReconcileSchedule } from './temporal/handoffs/reconciler';
import { WORKFLOW_BUNDLE_IGNORED_MODULES } from './temporal/handoffs/bundle';
import { installWorkerRuntime } from './metrics/temporal-runtime';
import { startWorkerMetrics } from './metrics/worker';

/**
 * The workflow bundle is built once by `npm run build` (dist/workflow-bundle.js); bundling at every
 * start costs seconds of webpack on a small machine. Without it, the worker bundles from source.
 */
export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'bundlerOptions'> {
  const bundle = path.resolve(__dirname, 'workflow-bundle.js');
  return existsSync(bundle)
    ? { workflowBundle: { codePath: bundle } }
    : { workflowsPath: require.resolve('./workflows'), bundlerOptions: { ignoreModules: WORKFLOW_BUNDLE_IGNORED_MODULES } };
}

export interface WorkerDeps extends StoreDeps {
  config: Config;
  keyring: Keyring;
  /** For activities that start or signal workflows (rate-limit permits). */
  client: Client;
  connection: NativeConnection;
  /** For warnings of the webhook handover (events appended by this worker's activities). */
  warn?: (msg: string, fields: Record<string, unknown>) => void;
}

/**
 * The process's two Workers. Both register every workflow and activity: the control queue still
 * carries send workflows started before the queues were split (and their activities), and an
 * activity a workflow schedules goes to its own queue.
 */
export interface CarteroWorkers {
  /** TEMPORAL_TASK_QUEUE: limiter, case, webhook, OAuth, verify, bounce watch, reconciler, deletion. */
  control: Worker;
  /** TEMPORAL_SEND_TASK_QUEUE: send workflows and their SMTP attempts. */
  send: Worker;
  pools: SmtpPools;
  gate: SendGate;
  /** Runs both until shutdown (or until one fails, which shuts the other down). */
  run(): Promise<void>;
  shutdown(): void;
}

export async function createWorker(deps: WorkerDeps, overrides: Partial<WorkerOptions> = {}): Promise<CarteroWorkers> {
  const { config } = deps;
  const webhookDispatcher = new WebhookDispatcher({
    events: deps.events,
    tenants: deps.tenants,
    client: deps.client,
    taskQueue: config.temporal.taskQueue,
    ...(deps.warn ? { warn: deps.warn } : {}),
  });
  // Events this worker's activities append are handed to their tenant's delivery workflow at once.
  deps.events.setAppendListener((tenantId) => webhookDispatcher.notify(tenantId));
  deps.events.setHandoverFilter((tenantId) => webhookDispatcher.wantsHandover(tenantId));
  const tokenTarget = { client: deps.client, taskQueue: config.temporal.taskQueue, refreshMarginMs: config.oauth.refreshMarginMs };
  const oauth = new OAuthAccess(deps.oauthTokens, tokenTarget);
  const pools = new SmtpPools(config.smtp.allowPrivateNetworks, oauth, config.smtp.socketTimeoutMs);
  // One gate for both Workers: a send run still on the control queue counts against its tenant too.
  const { tenantConcurrencyMax, localAttemptsMax, gateWaitersMax, gateWaitMs } = config.worker;
  const gate = new SendGate(tenantConcurrencyMax, localAttemptsMax, gateWaitersMax, gateWaitMs);
  const activities = createActivities({
    store: deps.store,
    tenants: deps.tenants,
    messages: deps.messages,
    suppressions: deps.suppressions,
    cases: deps.cases,
    // Bounces found by the IMAP watch reach the message's case.
    signalCase: caseFeedbackSignaller({
      cases: deps.cases,
      events: deps.events,
      temporal: deps.client,
      taskQueue: config.temporal.taskQueue,
    }),
    events: deps.events,
    pools,
    gate,
    temporal: deps.client,
    taskQueue: config.temporal.taskQueue,
    sendTaskQueue: config.temporal.sendTaskQueue,
    allowPrivateNetworks: config.smtp.allowPrivateNetworks,
    verifyTimeoutMs: config.smtp.verifyTimeoutMs,
    verifyChecks: config.verify,
    webhookDeliveries: deps.webhookDeliveries,
    webhookDispatcher,
    webhookPolicy: config.webhooks.policy,
    webhookAllowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    webhookSweepIntervalMs: config.webhooks.sweepIntervalMs,
    oauthTokens: deps.oauthTokens,
    oauthProviders: new OAuthProviders(config.oauth),
    oauth,
    bounceMailboxes: deps.bounceMailboxes,
    policy: config.send.policy,
    permitMarginMs: config.send.permitMarginMs,
    permits: deps.permits,
    permitMaxWaitMs: config.send.rateLimitMaxWaitMs,
  });
  const common = {
    connection: deps.connection,
    namespace: config.temporal.namespace,
    ...workflowSource(),
    activities,
    dataConverter: dataConverter(deps.keyring),
    shutdownGraceTime: config.shutdownGraceMs,
  };
  const { control: c, send: s } = config.worker;
  const control = await Worker.create({
    ...common,
    taskQueue: config.temporal.taskQueue,
    maxConcurrentWorkflowTaskExecutions: c.workflowTaskSlots,
    maxConcurrentActivityTaskExecutions: c.activitySlots,
    ...overrides,
  });
  const send = await Worker.create({
    ...common,
    taskQueue: config.temporal.sendTaskQueue,
    maxConcurrentWorkflowTaskExecutions: s.workflowTaskSlots,
    maxConcurrentActivityTaskExecutions: s.activitySlots,
    ...overrides,
  });
  const both = [control, send];
  const shutdown = () => {
    for (const w of both) if (w.getState() === 'RUNNING') w.shutdown();
  };
  return {
    control,
    send,
    pools,
    gate,
    shutdown,
    async run() {
      const runs = both.map((w) => w.run());
      try {
        await Promise.all(runs);
      } catch (err) {
        shutdown();
        await Promise.allSettled(runs);
        throw err;
      }
    },
  };
}

async function main(): Promise<void> {
  const { config, logger, keyring } = baseDeps('worker');
  // The bounce-mailbox watch parses fetched mail on the parse pool's threads, never on this event loop.
  configureParsePool(config.inbound.parse);
  // SIGINT/SIGTERM make worker.run() drain: no new tasks, in-flight activities get shutdownGraceTime.
  const temporalMetricsUrl = installWorkerRuntime(config);
  const repos = await openStore(config, keyring, logger);
  const metrics = config.workerMetrics ? await startWorkerMetrics(repos, { ...config.workerMetrics, temporalMetricsUrl }) : null;
  const connection = await retrying('Temporal', logger, () => connectWorkerConnection(config));
  const { client, connection: clientConnection } = await retrying('Temporal', logger, () => connectTemporal(config, keyring));
  const workers = await createWorker({
    ...repos,
    config,
    keyring,
    client,
    connection,
    warn: (msg, fields) => logger.warn(fields, msg),
  });
  await retrying('Temporal (webhook sweeper)', logger, () => ensureWebhookSweeper(client, config.temporal.taskQueue));
  await retrying('Temporal (reconcile schedule)', logger, () =>
    ensureReconcileSchedule(client, config.temporal.taskQueue, config.reconcile.intervalMs, {
      graceMs: config.reconcile.graceMs,
      notAcceptedGraceMs: config.reconcile.notAcceptedGraceMs,
    }),
  );
  // Once per deployment that still has case workflows under ambiguous ids; harmless (and quick) after.
  void retireLegacyCaseWorkflows(client).then(
    (n) => n > 0 && logger.info({ retired: n }, 'asked case workflows under legacy ids to save and end'),
    (err: unknown) =>
      logger.warn({ err: (err as Error).message }, 'could not list case workflows under legacy ids; the next worker start tries again'),
  );
  logger.info(
    { taskQueue: config.temporal.taskQueue, sendTaskQueue: config.temporal.sendTaskQueue, namespace: config.temporal.namespace },
    'worker running',
  );
  await workers.run();
  workers.pools.closeAll();
  await Promise.allSettled([connection.close(), clientConnection.close(), repos.store.close(), metrics?.close()]);
  logger.info('worker stopped');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`cartero worker: failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
