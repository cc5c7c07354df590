import { MongoClient, MongoNetworkError, MongoServerError, MongoServerSelectionError, type Db } from 'mongodb';
import { DependencyUnavailableError } from '../errors';
import { CaseRepository } from './cases';
import { EventRepository } from './events';
import { InboundRepository } from './inbound';
import { MessageRepository } from './messages';
import { OAuthTokenRepository } from './oauth-tokens';
import { PermitRepository } from './permits';
import { SuppressionRepository } from './suppressions';
import { WebhookDeliveryRepository } from './webhook-deliveries';

export interface Store {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
  ping(): Promise<void>;
}

/**
 * Connects with short server-selection timeouts so a dead store turns into a 503 quickly instead
 * of a request hanging for the driver's 30 s default.
 */
/** `monitorCommands`: emit the driver's command events (bench/send counts store commands per message). */
export async function connectStore(
  uri: string,
  dbName: string,
  maxPoolSize = 20,
  options: { monitorCommands?: boolean } = {},
): Promise<Store> {
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: 5_000,
    connectTimeoutMS: 5_000,
    // Bounded: FerretDB's SQLite has one writer, and a hundred queued writers only turn into
    // SQLITE_BUSY; MongoDB is well served by a modest pool per process too.
    maxPoolSize,
    appName: 'cartero',
    ...(options.monitorCommands ? { monitorCommands: true } : {}),
  });
  try {
    await client.connect();
  } catch (err) {
    throw new DependencyUnavailableError('store', `cannot connect to MongoDB: ${(err as Error).message}`);
  }
  const db = client.db(dbName);
  return {
    client,
    db,
    close: () => client.close(),
    ping: async () => {
      await db.command({ ping: 1 });
    },
  };
}

/**
 * Indexes only of kinds that FerretDB v1 and MongoDB both support: plain and unique (no TTL,
 * no partial indexes; see DESIGN.md). Hot paths filter on `_id` alone: it is the only filter
 * FerretDB's SQLite backend answers from an index (docs/decisions.md).
 */
export async function ensureIndexes(db: Db): Promise<void> {
  const tenants = db.collection('tenants');
  await tenants.createIndex({ apiKeyHash: 1 }, { unique: true, name: 'apiKeyHash_unique' });
  await tenants.createIndex({ inboundKey: 1 }, { unique: true, name: 'inboundKey_unique' });
  await db.collection('api_keys').createIndex({ tenantId: 1 }, { name: 'tenant' });
  await MessageRepository.ensureIndexes(db);
  await SuppressionRepository.ensureIndexes(db);
  await EventRepository.ensureIndexes(db);
  await WebhookDeliveryRepository.ensureIndexes(db);
  await OAuthTokenRepository.ensureIndexes(db);
  await CaseRepository.ensureIndexes(db);
  await InboundRepository.ensureIndexes(db);
  await PermitRepository.ensureIndexes(db);
}

/**
 * Node's own errors of a connection the store's end closed. The driver lets some through unwrapped:
 * a pooled connection written to after the server died fails with `EPIPE` ("This socket has been
 * ended by the other party"), found by test/integration/faults-store-restart.test.ts.
 */
const SOCKET_ERROR_CODES: ReadonlySet<string> = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT']);

/** Store failures worth retrying (network, failover, FerretDB's SQLITE_BUSY): 503, not 500. */
export function isTransientStoreError(err: unknown): boolean {
  // PoolClearedError is a MongoNetworkError.
  if (err instanceof MongoNetworkError || err instanceof MongoServerSelectionError) return true;
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  if (code !== undefined && SOCKET_ERROR_CODES.has(code)) return true;
  if (err instanceof MongoServerError) {
    return (
      err.hasErrorLabel('RetryableWriteError') ||
      err.hasErrorLabel('TransientTransactionError') ||
      /SQLITE_BUSY|database is locked/.test(err.message)
    );
  }
  return false;
}
