import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config/env';
import { createLogger } from './logging';
import type { Keyring } from './security/crypto';
import { connectStore, ensureIndexes } from './store/mongo';
import { repositories, type StoreDeps } from './store/repositories';
import { upgradeLegacySeals } from './store/seal-upgrade';
import { keyringFrom } from './temporal/connection';

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Loads the configuration or exits with the list of bad variables (exit code 2, no stack trace). */
export function configOrExit(component: string): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`cartero ${component}: ${err.message}\nSee .env.example for every variable.\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Retries `fn` until it succeeds or `totalMs` passes; dependencies may still be starting. */
export async function retrying<T>(what: string, logger: Logger, fn: () => Promise<T>, totalMs = 60_000): Promise<T> {
  const deadline = Date.now() + totalMs;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() + delay > deadline) {
        throw new Error(`${what} still unavailable after ${Math.round(totalMs / 1000)} s: ${(err as Error).message}`);
      }
      logger.warn({ attempt, err: (err as Error).message }, `${what} not reachable yet; retrying`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}

export async function openStore(config: Config, keyring: Keyring, logger: Logger): Promise<StoreDeps> {
  const store = await retrying('MongoDB', logger, () => connectStore(config.mongo.uri, config.mongo.db, config.mongo.maxPoolSize));
  await ensureIndexes(store.db);
  const repos = repositories(store, keyring, config.tenants.cacheMs, config.mongo.coalesceWrites);
  const upgraded = await upgradeLegacySeals(repos, (msg, fields) => logger.warn(fields, msg));
  if (upgraded > 0) logger.info({ tenants: upgraded }, 'sealed secrets of tenants from before salts upgraded to the endpoint-bound format');
  return repos;
}

export function baseDeps(component: string) {
  const config = configOrExit(component);
  const logger = createLogger(config.logLevel, component);
  const keyring = keyringFrom(config);
  return { config, logger, keyring };
}
