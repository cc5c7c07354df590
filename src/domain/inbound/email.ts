/**
 * The one shape every inbound-parse provider is normalised into (src/inbound/providers/*), and the
 * small pure helpers for the header values that threading trusts. Importable by workflows.
 */
export const INBOUND_PROVIDERS = ['brevo', 'sendgrid', 'ses', 'mailgun', 'postmark', 'mime'] as const;
export type InboundProvider = (typeof INBOUND_PROVIDERS)[number];

export interface InboundAddress {
  address: string;
  name: string | null;
}

/** A MIME part that is not the text or HTML body: attachments, inline images, delivery reports. */
export interface InboundPart {
  filename: string | null;
  contentType: string;
  contentId: string | null;
  disposition: 'attachment' | 'inline';
  content: Buffer;
}

/** A part we did not keep, and why (too large, could not be fetched, undecodable). */
export interface DroppedPart {
  filename: string | null;
  contentType: string | null;
  size: number | null;
  reason: string;
}

export interface InboundEmail {
  provider: InboundProvider;
  /** The provider's own id for the delivery (not the RFC Message-ID). */
  providerId: string | null;
  /** The RFC 5322 Message-ID with its angle brackets, or null when absent or unusable. */
  messageId: string | null;
  inReplyTo: string[];
  references: string[];
  from: InboundAddress | null;
  to: InboundAddress[];
  cc: InboundAddress[];
  replyTo: InboundAddress[];
  /** SMTP envelope recipients, when the provider reports them (route by these, not by To). */
  envelopeTo: string[];
  envelopeFrom: string | null;
  subject: string;
  date: Date | null;
  text: string;
  html: string | null;
  headers: Array<{ name: string; value: string }>;
  parts: InboundPart[];
  dropped: DroppedPart[];
  /** The raw RFC 5322 message when the provider gave it (kept for the bounce parser and audits). */
  raw: Buffer | null;
  spamScore: number | null;
}

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]+/g;
const ID_TOKEN = /<([^<>\s@]{1,200}@[^<>\s@]{1,200})>/g;

/**
 * Header values reach the store, the API and, for Message-IDs, future outbound References headers:
 * CR/LF and other control characters are replaced, so a value can never start a new header.
 */
export function cleanHeaderValue(value: string, max = 998): string {
  return value
    .replace(/\r?\n[ \t]+/g, ' ')
    .replace(CONTROL, ' ')
    .replace(/\t/g, ' ')
    .trim()
    .slice(0, max);
}

/** Every well-formed `<local@domain>` in a Message-ID list header; anything else is ignored. */
export function parseMessageIds(value: string | null | undefined, max = 100): string[] {
  if (!value) return [];
  const out: string[] = [];
  for (const m of value.matchAll(ID_TOKEN)) {
    const id = `<${m[1]}>`;
    if (!out.includes(id)) out.push(id);
    if (out.length >= max) break;
  }
  // A bare id without brackets (some MUAs and providers strip them).
  if (out.length === 0) {
    const bare = value.trim();
    if (/^[^<>\s@]{1,200}@[^<>\s@]{1,200}$/.test(bare)) out.push(`<${bare}>`);
  }
  return out;
}

const ADDRESS = /^[^\s@<>()",;:\\[\]]{1,64}@[A-Z0-9.-]{1,253}$/i;

/** A mailbox as stored: lower-cased domain, no display-name tricks, or null when not an address. */
export function cleanAddress(address: string | null | undefined, name?: string | null): InboundAddress | null {
  if (!address) return null;
  const a = address.trim().replace(/^<|>$/g, '');
  if (!ADDRESS.test(a)) return null;
  const at = a.lastIndexOf('@');
  const n = name ? cleanHeaderValue(name, 200) : '';
  return { address: `${a.slice(0, at)}@${a.slice(at + 1).toLowerCase()}`, name: n || null };
}

/** `Name <a@b>, c@d` → addresses (for providers that send address headers as text). */
export function parseAddressList(value: string | null | undefined): InboundAddress[] {
  if (!value) return [];
  const out: InboundAddress[] = [];
  // Split on commas outside quotes and angle brackets.
  let depth = 0;
  let quoted = false;
  let cur = '';
  const items: string[] = [];
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') depth++;
    else if (!quoted && ch === '>') depth = Math.max(0, depth - 1);
    if (ch === ',' && !quoted && depth === 0) {
      items.push(cur);
      cur = '';
    } else cur += ch;
  }
  items.push(cur);
  for (const item of items) {
    const m = /^(.*?)<([^<>]+)>\s*$/.exec(item.trim());
    const addr = m ? cleanAddress(m[2], m[1]!.trim().replace(/^"|"$/g, '')) : cleanAddress(item.trim());
    if (addr) out.push(addr);
  }
  return out;
}

const PREFIX = /^\s*(?:(?:re|fwd?|aw|wg|rv|enc|tr|sv|vs|antw|rif|r)\s*(?:(?:\[\d+\]|\(\d+\))\s*)?[:：]\s*)+/i;

/**
 * A subject as threading compares it: reply/forward prefixes in the usual languages (Re:, RE:,
 * Fwd:, AW:, RV:, Enc:, TR:, SV:…) stripped, whitespace collapsed, lower-cased.
 */
export function normalizeSubject(subject: string): string {
  let s = cleanHeaderValue(subject);
  for (let i = 0; i < 10; i++) {
    const next = s.replace(PREFIX, '').replace(/^\[[^\]]{0,40}\]\s*/, (tag) => (/^\[(?:ext|external|externo)\]/i.test(tag) ? '' : tag));
    if (next === s) break;
    s = next;
  }
  return s.replace(/\s+/g, ' ').trim().toLowerCase();
}

/**
 * Our outbound Message-IDs are `<{id without m_}.cartero@domain>` (domain/message.ts rfcMessageId):
 * a reply naming one can be traced to the message even before any index knows it.
 */
export function ownMessageRef(messageId: string): string | null {
  const m = /^<([A-Za-z0-9]{10,40})\.cartero@[^<>\s@]+>$/.exec(messageId);
  return m ? `m_${m[1]}` : null;
}
