import ipaddr from 'ipaddr.js';

/**
 * Human or machine, for every open and click, with the rule that decided. Pure: it looks at one
 * message's whole hit sequence at once, because some rules (a burst of distinct links, a proxy
 * retrying) are only visible across hits. Every rule and its evidence is in docs/tracking.md;
 * the rule names below are what the API and the events show.
 */
export type HitKind = 'open' | 'click';
export type HitClass = 'human' | 'machine';

export interface Hit {
  /** Unique per hit (assigned when it arrives); makes storing and events idempotent. */
  id: string;
  kind: HitKind;
  recipient: number | null;
  link: number | null;
  /** Epoch ms when the endpoint answered. */
  at: number;
  method: 'GET' | 'HEAD';
  userAgent: string;
  ip: string;
  /** `Purpose` / `Sec-Purpose` request header, if any. */
  purpose: string | null;
}

export const RULES = {
  head_request: 'HEAD request: browsers and mail clients GET; link checkers HEAD',
  prefetch_header: 'Purpose/Sec-Purpose: prefetch or prerender',
  no_user_agent: 'no User-Agent header',
  before_delivery: 'hit before the message was handed to the server (nobody could have read it)',
  scanner_agent: 'User-Agent of a known scanner, crawler or HTTP library',
  gmail_prefetch: "Gmail's prefetcher User-Agent (Edge/12.246 …)",
  gmail_image_proxy: "open through Gmail's image proxy (GoogleImageProxy): a real open, proxied",
  apple_mpp: 'bare "Mozilla/5.0" from Apple\'s network: Mail Privacy Protection prefetch',
  yahoo_proxy: "open through Yahoo's image proxy: a real open, proxied",
  proxy_retry: 'the same proxy fetched the pixel again within 60 s (proxy retry)',
  proxy_click: 'a mail image proxy fetched a link (proxies never follow links for people)',
  scanner_network: 'click from a mail-security network (Microsoft EOP/Defender, Google crawlers, configured ranges)',
  link_burst: 'three or more distinct links of the message clicked within 10 s by the same reader',
  default: 'no machine signal',
} as const;
export type RuleName = keyof typeof RULES;

export interface Verdict {
  cls: HitClass;
  rule: RuleName;
  /** Reached us through a mail provider's image proxy (IP and User-Agent are the proxy's). */
  proxied: boolean;
}

export interface ClassifyContext {
  /** Epoch ms of the first SMTP attempt that delivered to this message's server; null if none yet. */
  deliveredAt: number | null;
  /** Extra ranges whose clicks are machine (TRACKING_SCANNER_CIDRS). */
  scannerNetworks?: readonly Cidr[];
}

export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

export function parseCidrs(list: readonly string[]): Cidr[] {
  return list.map((c) => ipaddr.parseCIDR(c.trim()));
}

/** Apple Inc. holds 17.0.0.0/8 (ARIN); MPP's prefetchers fetch from it. */
const APPLE = parseCidrs(['17.0.0.0/8']);
/**
 * Exchange Online Protection / Defender for Office 365 egress (Microsoft's published Exchange
 * Online ranges) — where Safe Links detonates URLs from — and Googlebot's published range.
 */
const SCANNERS = parseCidrs([
  '40.92.0.0/15',
  '40.107.0.0/16',
  '52.100.0.0/14',
  '104.47.0.0/17',
  '2a01:111:f400::/48',
  '2a01:111:f403::/48',
  '66.249.64.0/19',
]);

export function inRanges(ip: string, ranges: readonly Cidr[]): boolean {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip);
  } catch {
    return false;
  }
  return ranges.some(([net, bits]) => addr.kind() === net.kind() && addr.match([net, bits] as never));
}

const SCANNER_AGENT =
  /bot\b|crawler|spider|curl\/|wget\/|python-requests|python-urllib|aiohttp|go-http-client|java\/|okhttp|libwww|httpclient|headlesschrome|phantomjs|barracuda|proofpoint|mimecast|symantec|messagelabs|trend ?micro|fortiguard|sophos|cisco|ironport|safelinks|microsoft office protocol discovery|urlscan|slackbot|facebookexternalhit|linkpreview/i;
const GMAIL_PREFETCH = /Chrome\/42\.0\.2311\.135 Safari\/537\.36 Edge\/12\.246/;
const GOOGLE_IMAGE_PROXY = /GoogleImageProxy/;
const YAHOO_PROXY = /YahooMailProxy/;

const BURST_WINDOW_MS = 10_000;
const BURST_LINKS = 3;
const PROXY_RETRY_MS = 60_000;

/** The reader a hit belongs to: the recipient when the token names one, else the client. */
export const visitorOf = (h: Pick<Hit, 'recipient' | 'ip' | 'userAgent'>): string =>
  h.recipient !== null ? `r${h.recipient}` : `c${h.ip}|${h.userAgent}`;

/** Verdicts for `hits` (any order), returned in the same order. */
export function classifyHits(hits: readonly Hit[], ctx: ClassifyContext): Verdict[] {
  const order = hits.map((_, i) => i).sort((a, b) => hits[a]!.at - hits[b]!.at || (hits[a]!.id < hits[b]!.id ? -1 : 1));
  const bursts = burstMembers(hits, order);
  const out = new Array<Verdict>(hits.length);
  const lastProxyOpen = new Map<string, number>();
  for (const i of order) {
    const h = hits[i]!;
    const v = (cls: HitClass, rule: RuleName, proxied = false): Verdict => ({ cls, rule, proxied });
    const ua = h.userAgent.trim();
    let verdict: Verdict;
    if (h.method === 'HEAD') verdict = v('machine', 'head_request');
    else if (h.purpose && /prefetch|prerender/i.test(h.purpose)) verdict = v('machine', 'prefetch_header');
    else if (ua === '') verdict = v('machine', 'no_user_agent');
    else if (ctx.deliveredAt === null || h.at < ctx.deliveredAt) verdict = v('machine', 'before_delivery');
    else if (GMAIL_PREFETCH.test(ua)) verdict = v('machine', 'gmail_prefetch');
    else if (GOOGLE_IMAGE_PROXY.test(ua) || YAHOO_PROXY.test(ua)) {
      const rule: RuleName = GOOGLE_IMAGE_PROXY.test(ua) ? 'gmail_image_proxy' : 'yahoo_proxy';
      if (h.kind === 'click') verdict = v('machine', 'proxy_click', true);
      else {
        const key = `${visitorOf(h)}|${rule}`;
        const prev = lastProxyOpen.get(key);
        lastProxyOpen.set(key, h.at);
        verdict = prev !== undefined && h.at - prev < PROXY_RETRY_MS ? v('machine', 'proxy_retry', true) : v('human', rule, true);
      }
    } else if (SCANNER_AGENT.test(ua)) verdict = v('machine', 'scanner_agent');
    else if (h.kind === 'open' && ua === 'Mozilla/5.0' && inRanges(h.ip, APPLE)) verdict = v('machine', 'apple_mpp', true);
    else if (h.kind === 'click' && (inRanges(h.ip, SCANNERS) || inRanges(h.ip, ctx.scannerNetworks ?? [])))
      verdict = v('machine', 'scanner_network');
    else if (bursts.has(i)) verdict = v('machine', 'link_burst');
    else verdict = v('human', 'default');
    out[i] = verdict;
  }
  return out;
}

/** Indexes of clicks that belong to a window of ≥ BURST_LINKS distinct links by one visitor. */
function burstMembers(hits: readonly Hit[], order: number[]): Set<number> {
  const members = new Set<number>();
  const byVisitor = new Map<string, number[]>();
  for (const i of order) {
    const h = hits[i]!;
    if (h.kind !== 'click') continue;
    const list = byVisitor.get(visitorOf(h)) ?? [];
    list.push(i);
    byVisitor.set(visitorOf(h), list);
  }
  for (const list of byVisitor.values()) {
    let start = 0;
    for (let end = 0; end < list.length; end++) {
      while (hits[list[end]!]!.at - hits[list[start]!]!.at > BURST_WINDOW_MS) start++;
      const window = list.slice(start, end + 1);
      if (new Set(window.map((i) => hits[i]!.link)).size >= BURST_LINKS) for (const i of window) members.add(i);
    }
  }
  return members;
}
