import ipaddr from 'ipaddr.js';
import type { Finding } from './smtp-probe';

/**
 * SPF (RFC 7208), DKIM key (RFC 6376 §3.6.1) and DMARC (RFC 7489) checks of a tenant's sending
 * domain, for `verify`. Pure: the DNS comes in through `DnsLookup` (node's resolver in the activity,
 * a table in the unit tests). Records are attacker-influenced input: every parse is a single split
 * over a bounded string, and the number of lookups is bounded (RFC 7208 §4.6.4: 10).
 */
export type DnsFailure = 'nxdomain' | 'nodata' | 'timeout' | 'servfail' | 'refused' | 'error';
export type DnsAnswer = { ok: true; records: string[] } | { ok: false; error: DnsFailure; detail: string };

export interface DnsLookup {
  /** TXT records, each record's strings joined (RFC 7208 §3.3). */
  txt(name: string): Promise<DnsAnswer>;
  a(name: string): Promise<DnsAnswer>;
  aaaa(name: string): Promise<DnsAnswer>;
  /** MX exchange names, lowest preference first. */
  mx(name: string): Promise<DnsAnswer>;
}

/** What counts as "the tenant's server" in its SPF: an include of the provider's SPF domain, or its addresses. */
export interface SpfTarget {
  /** Domains whose `include:`/`redirect=` authorizes the provider (e.g. `_spf.google.com`). */
  includes: string[];
  /** Addresses of the tenant's own server (its outgoing IP is often its submission IP). */
  ips: string[];
}

export const SPF_LOOKUP_LIMIT = 10;
/** RFC 7208 §4.6.4: at most 10 MX names are looked at per `mx` mechanism. */
const MX_NAME_LIMIT = 10;
/** Longest record we read: a TXT record over 4 KB is not a record a sender published by hand. */
const MAX_RECORD_CHARS = 4096;

const norm = (d: string): string => d.toLowerCase().replace(/\.$/, '');
const shown = (r: string): string => (r.length > 512 ? `${r.slice(0, 512)}…` : r);

function dnsProblem(name: string, a: Extract<DnsAnswer, { ok: false }>): string {
  switch (a.error) {
    case 'nxdomain':
      return `${name} does not exist (NXDOMAIN)`;
    case 'nodata':
      return `${name} has no record of that type`;
    case 'timeout':
      return `DNS lookup of ${name} timed out`;
    default:
      return `DNS lookup of ${name} failed: ${a.detail}`;
  }
}

const transient = (a: DnsAnswer): boolean =>
  !a.ok && (a.error === 'timeout' || a.error === 'servfail' || a.error === 'error' || a.error === 'refused');

// ---------------------------------------------------------------- SPF

type Qualifier = '+' | '-' | '~' | '?';
interface SpfTerm {
  qualifier: Qualifier;
  name: string;
  value: string;
}

/** Splits an SPF record into terms; `null` when it is not one (`v=spf1` must be the first term). */
export function parseSpf(record: string): { terms: SpfTerm[]; redirect?: string } | null {
  const parts = record.slice(0, MAX_RECORD_CHARS).trim().split(/\s+/);
  if (parts[0]?.toLowerCase() !== 'v=spf1') return null;
  const terms: SpfTerm[] = [];
  let redirect: string | undefined;
  for (const raw of parts.slice(1)) {
    if (raw.toLowerCase().startsWith('redirect=')) {
      redirect = raw.slice('redirect='.length);
      continue;
    }
    if (raw.includes('=')) continue; // other modifiers (exp=) do not authorize anything
    const q = raw[0];
    const qualifier: Qualifier = q === '-' || q === '~' || q === '?' || q === '+' ? q : '+';
    const body = q === qualifier ? raw.slice(1) : raw;
    const sep = body.search(/[:/]/);
    const name = (sep < 0 ? body : body.slice(0, sep)).toLowerCase();
    const value = sep < 0 ? '' : body[sep] === ':' ? body.slice(sep + 1) : body.slice(sep);
    terms.push({ qualifier, name, value });
  }
  return redirect === undefined ? { terms } : { terms, redirect };
}

function spfRecords(a: DnsAnswer): string[] {
  return a.ok ? a.records.filter((r) => /^v=spf1(?:\s|$)/i.test(r.trim())) : [];
}

function inCidr(ip: string, network: string, bits: number | undefined): boolean {
  try {
    const addr = ipaddr.process(ip);
    const net = ipaddr.parse(network);
    if (addr.kind() !== net.kind()) return false;
    const max = addr.kind() === 'ipv4' ? 32 : 128;
    const prefix = bits ?? max;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return false;
    return addr.match(net, prefix);
  } catch {
    return false;
  }
}

/** `a:host/24//64` → host and prefix lengths. */
function domainSpec(value: string, fallback: string): { domain: string; v4?: number; v6?: number } {
  const m = /^([^/]*)(?:\/(\d{1,3}))?(?:\/\/(\d{1,3}))?$/.exec(value);
  if (!m) return { domain: fallback };
  return {
    domain: m[1] ? norm(m[1]) : fallback,
    ...(m[2] !== undefined ? { v4: Number(m[2]) } : {}),
    ...(m[3] !== undefined ? { v6: Number(m[3]) } : {}),
  };
}

export interface SpfResult {
  finding: Finding;
  /** Whether the tenant's server is authorized (the DMARC check builds on it). */
  authorized: boolean;
}

/**
 * Does the SPF record of `domain` authorize the tenant's server? Walks the record in order the way
 * check_host() does (RFC 7208 §4.6), with one difference: it looks for the *provider* (its include
 * domain or its addresses) rather than evaluating one client IP, since the outgoing IP of a hosted
 * provider is not known in advance.
 */
export async function checkSpf(domain: string, target: SpfTarget, dns: DnsLookup): Promise<SpfResult> {
  const wanted = new Set(target.includes.map(norm));
  let lookups = 0;
  const seen = new Set<string>();
  type Walk = { match: Qualifier | null; via?: string; error?: string };

  const count = (): string | undefined => {
    lookups++;
    return lookups > SPF_LOOKUP_LIMIT
      ? `more than ${SPF_LOOKUP_LIMIT} DNS lookups (RFC 7208 §4.6.4): receivers treat the record as an error`
      : undefined;
  };

  const addresses = async (name: string): Promise<string[] | string> => {
    const [a4, a6] = await Promise.all([dns.a(name), dns.aaaa(name)]);
    if (transient(a4)) return dnsProblem(name, a4 as Extract<DnsAnswer, { ok: false }>);
    return [...(a4.ok ? a4.records : []), ...(a6.ok ? a6.records : [])];
  };

  const ipMatch = (ips: string[], spec: { v4?: number; v6?: number }): string | undefined => {
    for (const own of target.ips) for (const ip of ips) if (inCidr(own, ip, ip.includes(':') ? spec.v6 : spec.v4)) return own;
    return undefined;
  };

  const walk = async (name: string, depth: number): Promise<Walk & { record?: string }> => {
    if (depth > SPF_LOOKUP_LIMIT || seen.has(name)) return { match: null, error: `include loop at ${name}` };
    seen.add(name);
    const answer = await dns.txt(name);
    if (transient(answer)) return { match: null, error: dnsProblem(name, answer as Extract<DnsAnswer, { ok: false }>) };
    const records = spfRecords(answer);
    if (records.length === 0) return { match: null, error: `${name} has no SPF record` };
    if (records.length > 1)
      return {
        match: null,
        error: `${name} publishes ${records.length} SPF records; RFC 7208 §4.5 makes that an error`,
        record: records.join(' | '),
      };
    const record = records[0]!;
    const parsed = parseSpf(record)!;
    for (const t of parsed.terms) {
      switch (t.name) {
        case 'all':
          return { match: t.qualifier, via: `${t.qualifier}all`, record };
        case 'include': {
          const err = count();
          if (err) return { match: null, error: err, record };
          const inc = norm(t.value);
          if (wanted.has(inc)) return { match: t.qualifier, via: `include:${inc}`, record };
          const sub = await walk(inc, depth + 1);
          if (sub.error) return { match: null, error: sub.error, record };
          // An include matches only on its pass (§5.2); its -all/~all just means "not here".
          if (sub.match === '+') return { match: t.qualifier, via: `include:${inc} → ${sub.via ?? ''}`, record };
          break;
        }
        case 'a':
        case 'mx': {
          const err = count();
          if (err) return { match: null, error: err, record };
          const spec = domainSpec(t.value, name);
          let names = [spec.domain];
          if (t.name === 'mx') {
            const mx = await dns.mx(spec.domain);
            if (transient(mx)) return { match: null, error: dnsProblem(spec.domain, mx as Extract<DnsAnswer, { ok: false }>), record };
            names = (mx.ok ? mx.records : []).slice(0, MX_NAME_LIMIT).map(norm);
          }
          for (const n of names) {
            const ips = await addresses(n);
            if (typeof ips === 'string') return { match: null, error: ips, record };
            const hit = ipMatch(ips, spec);
            if (hit) return { match: t.qualifier, via: `${t.name}${t.value ? ':' + t.value : ''} (${hit})`, record };
          }
          break;
        }
        case 'ip4':
        case 'ip6': {
          const [net, bits] = t.value.split('/');
          for (const own of target.ips)
            if (net && inCidr(own, net, bits === undefined ? undefined : Number(bits)))
              return { match: t.qualifier, via: `${t.name}:${t.value}`, record };
          break;
        }
        case 'exists':
        case 'ptr': {
          // They count against the limit; their result depends on the connecting IP, which we do not have.
          const err = count();
          if (err) return { match: null, error: err, record };
          break;
        }
        default:
          break;
      }
    }
    if (parsed.redirect !== undefined) {
      const err = count();
      if (err) return { match: null, error: err, record };
      const to = norm(parsed.redirect);
      if (wanted.has(to)) return { match: '+', via: `redirect=${to}`, record };
      const sub = await walk(to, depth + 1);
      return { ...sub, record };
    }
    // No `all`: the default result is neutral (§4.7).
    return { match: null, record };
  };

  const top = await walk(norm(domain), 0);
  const base = { check: 'spf' as const, subject: domain, ...(top.record ? { record: shown(top.record) } : {}) };
  const provider = target.includes.length > 0 ? target.includes.join(' or ') : target.ips.join(', ') || 'the server';
  const addInclude =
    target.includes.length > 0
      ? `add include:${target.includes[0]} to the SPF record of ${domain} (before its all)`
      : `add ip4:/ip6: mechanisms for the server's outgoing address(es) (${target.ips.join(', ') || 'ask the provider'}) to the SPF record of ${domain}`;
  if (top.error) {
    const missing = /has no SPF record$/.test(top.error) && !top.record;
    return {
      authorized: false,
      finding: {
        ...base,
        status: missing ? 'warn' : 'fail',
        message: `SPF: ${top.error}`,
        fix: missing
          ? `publish a TXT record "v=spf1 ${target.includes[0] ? 'include:' + target.includes[0] : 'a mx'} ~all" at ${domain}`
          : `fix the SPF record of ${domain}: ${top.error}; ${addInclude}`,
      },
    };
  }
  if (top.match === '+' && top.via && !/^\+?all$/.test(top.via)) {
    return { authorized: true, finding: { ...base, status: 'pass', message: `SPF of ${domain} authorizes ${provider} (${top.via})` } };
  }
  if (top.match === '+') {
    return {
      authorized: true,
      finding: {
        ...base,
        status: 'warn',
        message: `SPF of ${domain} ends in +all: it authorizes every server on the internet`,
        fix: `replace +all with ~all and ${addInclude}`,
      },
    };
  }
  return {
    authorized: false,
    finding: {
      ...base,
      status: top.match === '-' ? 'fail' : 'warn',
      message: `SPF of ${domain} does not authorize ${provider}${top.via ? ` (reaches ${top.via})` : ''}`,
      fix: addInclude,
    },
  };
}

// ---------------------------------------------------------------- DKIM

/** Tags of a DKIM key record or a DMARC record: `k=v; k=v`, a single split, bounded. */
export function parseTags(record: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of record.slice(0, MAX_RECORD_CHARS).split(';').slice(0, 64)) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim().toLowerCase();
    if (k && !tags.has(k)) tags.set(k, part.slice(i + 1).replace(/\s+/g, ''));
  }
  return tags;
}

export async function checkDkim(domain: string, selectors: string[], dns: DnsLookup): Promise<{ findings: Finding[]; found: boolean }> {
  const findings: Finding[] = [];
  let found = false;
  for (const sel of selectors) {
    const name = `${sel}._domainkey.${domain}`;
    const answer = await dns.txt(name);
    const base = { check: 'dkim' as const, subject: name };
    if (!answer.ok) {
      findings.push({
        ...base,
        status: transient(answer) ? 'warn' : 'fail',
        message: `DKIM: ${dnsProblem(name, answer)}`,
        fix: transient(answer)
          ? 'run verify again; if it persists, check the DNS servers of the domain'
          : `turn on DKIM signing for ${domain} at the provider and publish the key it gives you at ${name}`,
      });
      continue;
    }
    const key = answer.records.find((r) => /(?:^|;)\s*p=/i.test(r));
    if (!key) {
      findings.push({
        ...base,
        status: 'fail',
        message: `DKIM: ${name} holds no key record (no p= tag)`,
        record: shown(answer.records.join(' | ')),
        fix: `publish the DKIM key the provider gives you at ${name}`,
      });
      continue;
    }
    const tags = parseTags(key);
    if (!tags.get('p')) {
      findings.push({
        ...base,
        status: 'fail',
        message: `DKIM: the key at ${name} is revoked (empty p=)`,
        record: shown(key),
        fix: `publish the current key at ${name}, or use the selector the provider signs with now`,
      });
      continue;
    }
    found = true;
    findings.push({ ...base, status: 'pass', message: `DKIM key published at ${name} (${tags.get('k') ?? 'rsa'})`, record: shown(key) });
  }
  return { findings, found };
}

// ---------------------------------------------------------------- DMARC

/** Organizational domain without a public-suffix list: the last two labels (wrong for co.uk-style suffixes, where it only finds nothing). */
function organizationalDomain(domain: string): string {
  return domain.split('.').slice(-2).join('.');
}

export interface DmarcInput {
  domain: string;
  spfAuthorized: boolean;
  /** Whether SPF can align: the envelope sender is in the From domain (false for relays that use their own bounce domain). */
  spfCanAlign: boolean;
  dkimFound: boolean;
  /** Whether any DKIM selector was checked at all (unknown selectors: DKIM may still be in place). */
  dkimChecked: boolean;
}

export async function checkDmarc(input: DmarcInput, dns: DnsLookup): Promise<Finding> {
  const { domain } = input;
  const lookup = async (name: string): Promise<{ name: string; answer: DnsAnswer }> => ({ name, answer: await dns.txt(`_dmarc.${name}`) });
  let at = await lookup(domain);
  const records = (a: DnsAnswer) => (a.ok ? a.records.filter((r) => /^v=DMARC1\s*(?:;|$)/i.test(r.trim())) : []);
  const org = organizationalDomain(domain);
  if (records(at.answer).length === 0 && !transient(at.answer) && org !== domain) at = await lookup(org);
  const subject = `_dmarc.${at.name}`;
  if (transient(at.answer)) {
    return {
      check: 'dmarc',
      subject,
      status: 'warn',
      message: `DMARC: ${dnsProblem(subject, at.answer as Extract<DnsAnswer, { ok: false }>)}`,
      fix: 'run verify again; if it persists, check the DNS servers of the domain',
    };
  }
  const found = records(at.answer);
  if (found.length === 0) {
    return {
      check: 'dmarc',
      subject: `_dmarc.${domain}`,
      status: 'warn',
      message: `DMARC: no record at _dmarc.${domain}${org !== domain ? ` nor _dmarc.${org}` : ''}; Gmail and Yahoo require one of bulk senders`,
      fix: `publish a TXT record "v=DMARC1; p=none; rua=mailto:dmarc@${domain}" at _dmarc.${domain}, then tighten p= once reports show your mail passing`,
    };
  }
  if (found.length > 1) {
    return {
      check: 'dmarc',
      subject,
      status: 'fail',
      record: shown(found.join(' | ')),
      message: `DMARC: ${found.length} records at ${subject}; receivers ignore them all (RFC 7489 §6.6.3)`,
      fix: `keep exactly one v=DMARC1 record at ${subject}`,
    };
  }
  const record = found[0]!;
  const tags = parseTags(record);
  const p = tags.get(at.name === domain ? 'p' : 'sp') ?? tags.get('p');
  const adkim = tags.get('adkim') === 's' ? 'strict' : 'relaxed';
  const aspf = tags.get('aspf') === 's' ? 'strict' : 'relaxed';
  const base = { check: 'dmarc' as const, subject, record: shown(record) };
  const modes = `alignment: DKIM ${adkim}, SPF ${aspf}`;
  if (p !== 'none' && p !== 'quarantine' && p !== 'reject') {
    return {
      ...base,
      status: 'fail',
      message: `DMARC: policy p=${p ?? '(missing)'} is not none, quarantine or reject`,
      fix: `set p=none, p=quarantine or p=reject in ${subject}`,
    };
  }
  const spfAligned = input.spfAuthorized && input.spfCanAlign;
  const canPass = spfAligned || input.dkimFound;
  if (p !== 'none' && !canPass) {
    return {
      ...base,
      status: input.dkimChecked ? 'fail' : 'warn',
      message: `DMARC p=${p} (${modes}): ${input.dkimChecked ? 'neither an aligned SPF pass nor a DKIM key was found' : 'SPF does not give an aligned pass and no DKIM selector is known to check'}: receivers will ${p} this mail`,
      fix: input.spfCanAlign
        ? `authorize the server in the SPF record of ${domain} or turn on DKIM signing for ${domain}${input.dkimChecked ? '' : ' (and name its selector in verify.dkimSelectors)'}`
        : `turn on DKIM signing for ${domain} at the provider (its envelope sender is its own domain, so SPF cannot align)${input.dkimChecked ? '' : ' and name the selector in verify.dkimSelectors'}`,
    };
  }
  if (p === 'none') {
    return {
      ...base,
      status: 'warn',
      message: `DMARC p=none (${modes}): monitoring only, receivers apply no policy`,
      fix: `once aggregate reports show your mail passing, move ${subject} to p=quarantine, then p=reject`,
    };
  }
  return {
    ...base,
    status: 'pass',
    message: `DMARC p=${p} (${modes}); passes through ${[spfAligned ? 'SPF' : '', input.dkimFound ? 'DKIM' : ''].filter(Boolean).join(' and ')}`,
  };
}
