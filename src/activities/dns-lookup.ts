import { promises as dnsPromises } from 'node:dns';
import type { DnsAnswer, DnsFailure, DnsLookup } from '../domain/mail-auth';

/**
 * node's resolver behind the pure checks' `DnsLookup`: configurable servers (DNS_SERVERS, so tests
 * point it at their own DNS process), a per-query timeout, and bounded answers — the records are
 * whatever the domain's owner (or whoever answers) publishes.
 */
export interface DnsLookupOptions {
  /** `host` or `host:port` entries; empty = the system's resolvers. */
  servers: readonly string[];
  timeoutMs: number;
  /** No query starts after this time (ms since epoch): the verify activity has a deadline of its own. */
  deadline?: number;
}

const MAX_RECORDS = 32;
const MAX_RECORD_CHARS = 4096;
const MAX_QUERIES = 60;

function failure(err: unknown): Extract<DnsAnswer, { ok: false }> {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const map: Record<string, DnsFailure> = {
    ENOTFOUND: 'nxdomain',
    ENODATA: 'nodata',
    ETIMEOUT: 'timeout',
    ESERVFAIL: 'servfail',
    EREFUSED: 'refused',
    ECONNREFUSED: 'refused',
  };
  return { ok: false, error: map[code] ?? 'error', detail: `${code || 'error'}: ${(err as Error).message}` };
}

export function createDnsLookup(opts: DnsLookupOptions): DnsLookup {
  const resolver = new dnsPromises.Resolver({ timeout: opts.timeoutMs, tries: 2 });
  if (opts.servers.length > 0) resolver.setServers([...opts.servers]);
  let queries = 0;
  // One verify run asks at most MAX_QUERIES questions whatever the records say (SPF's own limit is per domain).
  const ask = async (fn: () => Promise<string[]>): Promise<DnsAnswer> => {
    if (++queries > MAX_QUERIES) return { ok: false, error: 'error', detail: `more than ${MAX_QUERIES} DNS queries in one verify run` };
    if (opts.deadline !== undefined && Date.now() > opts.deadline)
      return { ok: false, error: 'timeout', detail: "verify's time for DNS checks is spent" };
    try {
      const records = (await fn()).slice(0, MAX_RECORDS).map((r) => r.slice(0, MAX_RECORD_CHARS));
      return records.length > 0 ? { ok: true, records } : { ok: false, error: 'nodata', detail: 'no records' };
    } catch (err) {
      return failure(err);
    }
  };
  return {
    txt: (name) => ask(async () => (await resolver.resolveTxt(name)).map((chunks) => chunks.join(''))),
    a: (name) => ask(() => resolver.resolve4(name)),
    aaaa: (name) => ask(() => resolver.resolve6(name)),
    mx: (name) => ask(async () => (await resolver.resolveMx(name)).sort((x, y) => x.priority - y.priority).map((m) => m.exchange)),
  };
}
