import { z } from 'zod';

/**
 * Outbound messages as the API accepts them, and their statuses. Addresses are validated strictly
 * (no display-name tricks, no CR/LF, RFC 5321 length limits): they go into SMTP commands verbatim.
 */
export const MESSAGE_STATUSES = [
  'queued',
  'scheduled',
  'waiting_rate_limit',
  'waiting_credentials',
  'sending',
  'retrying',
  'sent',
  'partially_sent',
  'failed',
  'bounced',
  'cancelled',
  'suppressed',
] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<MessageStatus> = new Set([
  'sent',
  'partially_sent',
  'failed',
  'bounced',
  'cancelled',
  'suppressed',
]);

export type RecipientStatus = 'pending' | 'sent' | 'bounced' | 'suppressed' | 'failed';

const CONTROL = /[\u0000-\u001f\u007f]/;
// Local part: dot-atom (RFC 5322 §3.2.3) — quoted local parts are legal but no tenant server we
// target needs them and they are a classic injection vector, so they are refused.
const LOCAL = /^[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*$/;
const DOMAIN = /^(?=.{1,253}$)(?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+[A-Z]{2,63}$/i;

export function addressProblem(address: string): string | null {
  if (CONTROL.test(address)) return 'must not contain control characters (CR, LF…)';
  if (address.length > 254) return 'must be at most 254 characters';
  const at = address.lastIndexOf('@');
  if (at <= 0) return "must contain a local part and an '@'";
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length > 64) return 'local part must be at most 64 characters';
  if (!LOCAL.test(local)) return 'local part has characters that are not allowed';
  if (!DOMAIN.test(domain)) return 'domain is not a valid fully qualified domain name';
  return null;
}

export const addressSchema = z.string().superRefine((v, ctx) => {
  const p = addressProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

const mailboxSchema = z.union([
  addressSchema,
  z.strictObject({
    address: addressSchema,
    name: z
      .string()
      .max(200)
      .refine((s) => !CONTROL.test(s), 'must not contain control characters'),
  }),
]);
export type Mailbox = z.infer<typeof mailboxSchema>;
export const mailboxAddress = (m: Mailbox): string => (typeof m === 'string' ? m : m.address);

/** Headers the service owns; a custom header may not set or duplicate them. */
const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'sender',
  'subject',
  'date',
  'message-id',
  'in-reply-to',
  'references',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'content-id',
  'return-path',
  'received',
  'dkim-signature',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
  'authentication-results',
  'list-unsubscribe',
  'list-unsubscribe-post',
  'x-cartero-id',
]);

const headersSchema = z
  .record(
    z
      .string()
      .regex(/^[\x21-\x39\x3b-\x7e]{1,76}$/, 'header names are printable ASCII without spaces or colons')
      .refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()), 'this header is set by Cartero and cannot be given'),
    z
      .string()
      .max(998)
      .refine((v) => !CONTROL.test(v.replace(/\t/g, '')), 'header values must not contain CR, LF or other control characters'),
  )
  .refine((h) => Object.keys(h).length <= 50, 'at most 50 custom headers');

/** Base64 alphabet and line breaks: A-Z a-z 0-9 + / CR LF. */
const isBase64Char = (c: number) =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x0d || c === 0x0a;

/**
 * Base64 lines, then `=` / `==` padding or one other blank, then only whitespace: what
 * /^[A-Z0-9+/\r\n]*(?:(?:={1,2}|[^\S\r\n])\s*)?$/i accepts, in one pass over the characters. Attachments are
 * megabytes of it, checked on the API's event loop for every POST /v1/messages.
 */
function isBase64Text(s: string): boolean {
  let i = 0;
  while (i < s.length && isBase64Char(s.charCodeAt(i))) i++;
  if (i === s.length) return true;
  if (s[i] === '=') i += s[i + 1] === '=' ? 2 : 1;
  else if (s[i]!.trim() === '') i++;
  else return false;
  // What is left must be whitespace only (trimEnd strips exactly what \s matches).
  return s.trimEnd().length <= i;
}

const attachmentSchema = z.strictObject({
  filename: z
    .string()
    .min(1)
    .max(255)
    .refine((s) => !CONTROL.test(s) && !/[\\/]/.test(s), 'must be a plain file name without control characters or slashes'),
  contentType: z
    .string()
    .regex(/^[\w!#$&^.+-]+\/[\w!#$&^.+-]+$/, 'must be a MIME type like application/pdf')
    .max(127),
  contentBase64: z.string().min(1).refine(isBase64Text, 'must be base64'),
  /** Makes the attachment inline, referenced from the HTML as cid:<contentId>. */
  contentId: z
    .string()
    .regex(/^[\w.%+-]{1,100}(@[A-Z0-9.-]{1,100})?$/i, 'must be a simple token like logo@acme')
    .optional(),
});

export const messageCreateSchema = z
  .strictObject({
    tenantId: z.string().min(1).max(40).optional(),
    from: mailboxSchema,
    to: z.array(mailboxSchema).max(1000).default([]),
    cc: z.array(mailboxSchema).max(1000).default([]),
    bcc: z.array(mailboxSchema).max(1000).default([]),
    replyTo: mailboxSchema.optional(),
    subject: z
      .string()
      .max(998)
      .refine((s) => !CONTROL.test(s.replace(/\t/g, '')), 'must not contain CR, LF or other control characters'),
    text: z
      .string()
      .max(20 * 1024 * 1024)
      .optional(),
    html: z
      .string()
      .max(20 * 1024 * 1024)
      .optional(),
    attachments: z.array(attachmentSchema).max(100).default([]),
    headers: headersSchema.default({}),
    caseId: z
      .string()
      .regex(/^[\w-]{1,64}$/)
      .optional(),
    inReplyTo: z
      .string()
      .regex(/^(m_[A-Za-z0-9]{10,40}|i_[a-f0-9]{32})$/, 'must be the id of a message sent (m_…) or received (i_…) through Cartero')
      .optional(),
    sendAt: z.iso.datetime({ offset: true }).optional(),
    track: z.strictObject({ opens: z.boolean().optional(), clicks: z.boolean().optional() }).optional(),
    /** One-click unsubscribe (RFC 8058): List-Unsubscribe (our https URL, plus `mailto` if given) and List-Unsubscribe-Post. */
    unsubscribe: z.union([z.boolean(), z.strictObject({ mailto: addressSchema.optional() })]).optional(),
    idempotencyKey: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
      .optional(),
  })
  .superRefine((m, ctx) => {
    if (m.to.length + m.cc.length + m.bcc.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'at least one recipient in to, cc or bcc is required' });
    }
    if (m.text === undefined && m.html === undefined) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'text or html is required' });
    }
  });
export type MessageCreateInput = z.infer<typeof messageCreateSchema>;

/** Envelope recipients, de-duplicated case-insensitively (a person in to and cc gets one copy). */
export function envelopeRecipients(
  m: Pick<MessageCreateInput, 'to' | 'cc' | 'bcc'>,
): Array<{ address: string; kind: 'to' | 'cc' | 'bcc' }> {
  const seen = new Set<string>();
  const out: Array<{ address: string; kind: 'to' | 'cc' | 'bcc' }> = [];
  for (const kind of ['to', 'cc', 'bcc'] as const) {
    for (const mb of m[kind]) {
      const address = mailboxAddress(mb);
      const key = address.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ address, kind });
    }
  }
  return out;
}

export const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** An RFC 5322 Message-ID on the tenant's domain, unique by construction from our id. */
export function rfcMessageId(id: string, domain: string): string {
  return `<${id.replace(/^m_/, '')}.cartero@${domain}>`;
}

/** References for a reply: the parent's chain plus the parent (RFC 5322 §3.6.4), capped in length. */
export function referencesFor(parent: { messageId: string; references: string[] }): string[] {
  const chain = [...parent.references, parent.messageId];
  // Keep the thread root and the most recent ids; some servers reject headers over ~8 KB.
  return chain.length > 20 ? [chain[0]!, ...chain.slice(-19)] : chain;
}
