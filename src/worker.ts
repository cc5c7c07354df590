import { existsSync } from 'node:fs';
import path from 'node:path';
import { Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import { baseDeps, openStore, retrying } from './bootstrap';
import type { Config } from './config/env';
import type { Keyring } from './security/crypto';
import type { TenantRepository } from './store/tenants';
import { connectWorkerConnection, dataConverter } from './temporal/connection';

/**
 * The workflow bundle is built once by `npm run build` (dist/workflow-bundle.js); bundling at every
 * start costs seconds of webpack on a small machine. Without it, the worker bundles from source.
 */
export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = path.resolve(__dirname, 'workflow-bundle.js');
  return existsSync(bundle) ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('./workflows') };
}

export async function createWorker(
  config: Config,
  keyring: Keyring,
  tenants: TenantRepository,
  connection: Awaited<ReturnType<typeof connectWorkerConnection>>,
  overrides: Partial<WorkerOptions> = {},
): Promise<Worker> {
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...workflowSource(),
    activities: createActivities({
      tenants,
      allowPrivateNetworks: config.smtp.allowPrivateNetworks,
      verifyTimeoutMs: config.smtp.verifyTimeoutMs,
    }),
    dataConverter: dataConverter(keyring),
    shutdownGraceTime: config.shutdownGraceMs,
    ...overrides,
  });
}

async function main(): Promise<void> {
  const { config, logger, keyring } = baseDeps('worker');
  // SIGINT/SIGTERM make worker.run() drain: no new tasks, in-flight activities get shutdownGraceTime.
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const { store, tenants } = await openStore(config, keyring, logger);
  const connection = await retrying('Temporal', logger, () => connectWorkerConnection(config));
  const worker = await createWorker(config, keyring, tenants, connection);
  logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker running');
  await worker.run();
  await connection.close();
  await store.close();
  logger.info('worker stopped');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`cartero worker: failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
