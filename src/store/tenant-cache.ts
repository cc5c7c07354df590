/** What the cache needs of a tenant document (generic, so this module does not import tenants.ts). */
interface Cacheable {
  _id: string;
  apiKeyHash: string;
}

/**
 * The tenant reads of the two hottest paths, kept in memory for a short time (TENANT_CACHE_MS):
 * the API key → tenant lookup of every API request (two reads) and the tenant read of a send's
 * first attempt (one). docs/decisions.md, "Tenant cache", says what the staleness costs.
 *
 * Every write through the process's TenantRepository clears it once the write is done (and a read
 * that began before is not kept), so this process sees its own changes at once (a rotated or revoked key, new settings); another process's writes are seen
 * within the time to live. Only live tenants found by a complete lookup are kept: an unknown key
 * is never cached, so guessing keys cannot fill it, and it is bounded by `maxEntries` anyway.
 */
export class TenantReadCache<TenantDoc extends Cacheable> {
  private readonly byId = new Map<string, { doc: TenantDoc; at: number }>();
  private readonly byKeyHash = new Map<string, { tenantId: string; at: number }>();
  /** Bumped by clear(): a read that began before a write finished is not kept after it. */
  private gen = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Taken before a read, handed to put() with its result. */
  get generation(): number {
    return this.gen;
  }

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  tenant(id: string): TenantDoc | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    if (this.now() - e.at >= this.ttlMs) {
      this.byId.delete(id);
      return undefined;
    }
    return e.doc;
  }

  /** The tenant whose current key has this hash, if both were read within the time to live. */
  tenantOfKey(keyHash: string): TenantDoc | undefined {
    const e = this.byKeyHash.get(keyHash);
    if (!e) return undefined;
    const doc = this.now() - e.at < this.ttlMs ? this.tenant(e.tenantId) : undefined;
    // The tenant's own record is authoritative, as in findByApiKey: a rotated key is dead.
    if (doc && doc.apiKeyHash === keyHash) return doc;
    this.byKeyHash.delete(keyHash);
    return undefined;
  }

  put(generation: number, doc: TenantDoc, keyHash?: string): void {
    if (!this.enabled || generation !== this.gen) return;
    const at = this.now();
    bounded(this.byId, this.maxEntries).set(doc._id, { doc, at });
    if (keyHash) bounded(this.byKeyHash, this.maxEntries).set(keyHash, { tenantId: doc._id, at });
  }

  clear(): void {
    this.gen++;
    this.byId.clear();
    this.byKeyHash.clear();
  }
}

/** Drops the oldest entry (Map keeps insertion order) when full. */
function bounded<K, V>(map: Map<K, V>, max: number): Map<K, V> {
  if (map.size >= max) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  return map;
}

/**
 * Concurrent misses for one key share one read (a burst's requests all miss when an entry expires),
 * unless a write of this process came between: a caller that starts after a write never joins a
 * read that began before it (`generation`, as TenantReadCache.put).
 */
export class SharedReads<T> {
  private readonly flights = new Map<string, { generation: number; read: Promise<T> }>();

  run(key: string, generation: number, load: () => Promise<T>): Promise<T> {
    const flight = this.flights.get(key);
    if (flight && flight.generation === generation) return flight.read;
    const read = load().finally(() => {
      if (this.flights.get(key)?.read === read) this.flights.delete(key);
    });
    this.flights.set(key, { generation, read });
    return read;
  }
}
