import { hash } from 'node:crypto';
import ipaddr from 'ipaddr.js';

/**
 * What keeps one client from turning a pixel or a link into a stream of events, webhooks and case
 * signals (docs/tracking.md, "Replays and floods"). Both checks run on the response path, in memory,
 * in O(1), and never change the answer — the pixel is served and the redirect followed either way;
 * they only decide whether the hit is recorded:
 * - a **per-IP token bucket** (IPv6 by /64: one host holds a whole /64) — over it, hits are not recorded;
 * - a **repeat window**: the same token from the same IP and User-Agent (and the same method and
 *   Purpose header: a prefetch and the click that follows it are two hits) within `repeatWindowMs`
 *   is one hit, however often it is fetched.
 * Both maps are bounded: past their size the oldest entries go (a forgotten bucket starts full, a
 * forgotten repeat counts once more). Per process: with several API processes each keeps its own,
 * which is why the hit writer also caps events per message (write-hits.ts) against the store.
 */
export interface HitGuardOptions {
  /** Hits per second an IP may have recorded, sustained; 0 = no limit. */
  ratePerSec: number;
  /** Hits an IP may have recorded in a burst (the bucket's size). */
  burst: number;
  /** A repeat of the same hit within this long is not recorded; 0 = every repeat is. */
  repeatWindowMs: number;
  /** Most IPs with a bucket, and most remembered hits, at once. */
  maxEntries?: number;
}

export type Admission = 'recorded' | 'repeat' | 'rate_limited';

interface Bucket {
  tokens: number;
  at: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;

export class HitGuard {
  private readonly buckets = new Map<string, Bucket>();
  /** Key → when the window of its first hit ends. Insertion order is expiry order (one window for all). */
  private readonly seen = new Map<string, number>();
  private readonly max: number;

  constructor(private readonly opts: HitGuardOptions) {
    this.max = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  /**
   * Whether to record a hit of `token` from `ip` at `now` (epoch ms); `client` is what else tells
   * two fetches apart (User-Agent, method, Purpose), built only when the repeat window is on.
   */
  admit(token: string, ip: string, client: () => string, now: number): Admission {
    if (this.opts.ratePerSec > 0 && !this.take(sourceOf(ip), now)) return 'rate_limited';
    if (this.opts.repeatWindowMs > 0 && this.isRepeat(`${token}\n${ip}\n${client()}`, now)) return 'repeat';
    return 'recorded';
  }

  private take(source: string, now: number): boolean {
    const b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= this.max) this.buckets.delete(this.buckets.keys().next().value!);
      this.buckets.set(source, { tokens: this.opts.burst - 1, at: now });
      return true;
    }
    b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) * this.opts.ratePerSec) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private isRepeat(hit: string, now: number): boolean {
    // A digest, not the parts: a click token carries its URL and a User-Agent may be 512 bytes.
    const key = hash('sha1', hit, 'base64');
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return true;
    if (until !== undefined) this.seen.delete(key);
    this.seen.set(key, now + this.opts.repeatWindowMs);
    // Expired entries sit at the front: drop a few per hit, so memory follows the traffic.
    for (let i = 0; i < 4; i++) {
      const first = this.seen.entries().next().value;
      if (!first || (first[1] > now && this.seen.size <= this.max)) break;
      this.seen.delete(first[0]);
    }
    return false;
  }

  /** Entries held (for tests and the gauge). */
  get size(): { buckets: number; seen: number } {
    return { buckets: this.buckets.size, seen: this.seen.size };
  }
}

/**
 * The unit a rate limit applies to: an IPv4 address, or an IPv6 /64 (what one subscriber or host
 * is given; per address, one host could rotate through 2^64 of them).
 */
export function sourceOf(ip: string): string {
  if (!ip.includes(':')) return ip;
  if (ip.startsWith('::ffff:') && ip.includes('.')) return ip.slice(7);
  try {
    return `${ipaddr.IPv6.parse(ip).parts.slice(0, 4).join(':')}::/64`;
  } catch {
    return ip;
  }
}
