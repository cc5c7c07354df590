import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config/env';
import { createLogger } from './logging';
import type { Keyring } from './security/crypto';
import { connectStore, ensureIndexes, type Store } from './store/mongo';
import { CaseRepository } from './store/cases';
import { EventRepository } from './store/events';
import { InboundRepository } from './store/inbound';
import { MessageRepository } from './store/messages';
import { OAuthTokenRepository } from './store/oauth-tokens';
import { SuppressionRepository } from './store/suppressions';
import { TenantRepository } from './store/tenants';
import { WebhookDeliveryRepository } from './store/webhook-deliveries';
import { BounceMailboxRepository } from './store/bounce-mailboxes';
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

export interface StoreDeps {
  store: Store;
  tenants: TenantRepository;
  messages: MessageRepository;
  suppressions: SuppressionRepository;
  events: EventRepository;
  webhookDeliveries: WebhookDeliveryRepository;
  oauthTokens: OAuthTokenRepository;
  bounceMailboxes: BounceMailboxRepository;
  cases: CaseRepository;
  inbound: InboundRepository;
}

export function repositories(store: Store, keyring: Keyring): StoreDeps {
  return {
    store,
    tenants: new TenantRepository(store.db, keyring),
    messages: new MessageRepository(store.db),
    suppressions: new SuppressionRepository(store.db),
    events: new EventRepository(store.db),
    webhookDeliveries: new WebhookDeliveryRepository(store.db),
    oauthTokens: new OAuthTokenRepository(store.db, keyring),
    bounceMailboxes: new BounceMailboxRepository(store.db, keyring),
    cases: new CaseRepository(store.db),
    inbound: new InboundRepository(store.db, keyring),
  };
}

export async function openStore(config: Config, keyring: Keyring, logger: Logger): Promise<StoreDeps> {
  const store = await retrying('MongoDB', logger, () => connectStore(config.mongo.uri, config.mongo.db, config.mongo.maxPoolSize));
  await ensureIndexes(store.db);
  return repositories(store, keyring);
}

export function baseDeps(component: string) {
  const config = configOrExit(component);
  const logger = createLogger(config.logLevel, component);
  const keyring = keyringFrom(config);
  return { config, logger, keyring };
}
