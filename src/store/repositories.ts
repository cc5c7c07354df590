import type { Keyring } from '../security/crypto';
import { BounceMailboxRepository } from './bounce-mailboxes';
import { CaseRepository } from './cases';
import { EventRepository } from './events';
import { InboundRepository } from './inbound';
import { MessageRepository } from './messages';
import type { Store } from './mongo';
import { OAuthTokenRepository } from './oauth-tokens';
import { PermitRepository } from './permits';
import { SuppressionRepository } from './suppressions';
import { TenantRepository } from './tenants';
import { WebhookDeliveryRepository } from './webhook-deliveries';

/**
 * Every repository of a process, built once from its store connection (src/bootstrap.ts openStore)
 * and handed to the API (createApp) and the worker (createWorker). One instance each matters: the
 * events repository carries the process's outbox listener.
 */
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
  /** The rate limiters' queues and grant logs. */
  permits: PermitRepository;
}

/** `tenantCacheMs`: TENANT_CACHE_MS (see TenantReadCache); 0 when a caller needs every read fresh. */
export function repositories(store: Store, keyring: Keyring, tenantCacheMs = 0, coalesceWrites = false): StoreDeps {
  return {
    store,
    tenants: new TenantRepository(store.db, keyring, tenantCacheMs),
    messages: new MessageRepository(store.db, coalesceWrites),
    suppressions: new SuppressionRepository(store.db),
    events: new EventRepository(store.db, coalesceWrites),
    webhookDeliveries: new WebhookDeliveryRepository(store.db),
    oauthTokens: new OAuthTokenRepository(store.db, keyring),
    bounceMailboxes: new BounceMailboxRepository(store.db, keyring),
    cases: new CaseRepository(store.db, coalesceWrites),
    inbound: new InboundRepository(store.db, keyring),
    permits: new PermitRepository(store.db, tenantCacheMs),
  };
}
