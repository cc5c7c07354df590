import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { Runtime, Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import { SmtpPools } from './activities/smtp-transport';
import { baseDeps, openStore, retrying, type StoreDeps } from './bootstrap';
import type { Config } from './config/env';
import type { Keyring } from './security/crypto';
import { connectTemporal, connectWorkerConnection, dataConverter } from './temporal/connection';

/**
 * The workflow bundle is built once by `npm run build` (dist/workflow-bundle.js); bundling at every
 * start costs seconds of webpack on a small machine. Without it, the worker bundles from source.
 */
export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = path.resolve(__dirname, 'workflow-bundle.js');
  return existsSync(bundle) ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('./workflows') };
}

export interface WorkerDeps extends StoreDeps {
  config: Config;
  keyring: Keyring;
  /** For activities that start or signal workflows (rate-limit permits). */
  client: Client;
  connection: NativeConnection;
}

export async function createWorker(deps: WorkerDeps, overrides: Partial<WorkerOptions> = {}): Promise<{ worker: Worker; pools: SmtpPools }> {
  const { config } = deps;
  const pools = new SmtpPools(config.smtp.allowPrivateNetworks);
  const worker = await Worker.create({
    connection: deps.connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...workflowSource(),
    activities: createActivities({
      tenants: deps.tenants,
      messages: deps.messages,
      suppressions: deps.suppressions,
      cases: deps.cases,
      events: deps.events,
      pools,
      temporal: deps.client,
      taskQueue: config.temporal.taskQueue,
      allowPrivateNetworks: config.smtp.allowPrivateNetworks,
      verifyTimeoutMs: config.smtp.verifyTimeoutMs,
    }),
    dataConverter: dataConverter(deps.keyring),
    shutdownGraceTime: config.shutdownGraceMs,
    maxConcurrentActivityTaskExecutions: 200,
    ...overrides,
  });
  return { worker, pools };
}

async function main(): Promise<void> {
  const { config, logger, keyring } = baseDeps('worker');
  // SIGINT/SIGTERM make worker.run() drain: no new tasks, in-flight activities get shutdownGraceTime.
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const repos = await openStore(config, keyring, logger);
  const connection = await retrying('Temporal', logger, () => connectWorkerConnection(config));
  const { client, connection: clientConnection } = await retrying('Temporal', logger, () => connectTemporal(config, keyring));
  const { worker, pools } = await createWorker({ ...repos, config, keyring, client, connection });
  logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker running');
  await worker.run();
  pools.closeAll();
  await Promise.allSettled([connection.close(), clientConnection.close(), repos.store.close()]);
  logger.info('worker stopped');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`cartero worker: failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
