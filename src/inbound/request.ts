import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import Busboy from 'busboy';
import { cleanHeaderValue, type DroppedPart, type InboundEmail, type InboundPart } from '../domain/inbound/email';
import { AuthenticationError, ValidationError } from '../errors';
import { constantTimeEqual } from '../security/crypto';
import type { OpenInboundSettings } from '../store/inbound';
import type { SnsVerifier } from './sns';

/** A webhook request before its body is read: all that authentication may look at first. */
export interface InboundHead {
  headers: IncomingHttpHeaders;
}

/** One webhook request as adapters see it: the headers and the exact body bytes. */
export interface InboundRequest extends InboundHead {
  body: Buffer;
}

/**
 * How a provider lets a request in, before its body is read (src/api/routes/inbound.ts):
 * - `enabled`: the tenant configured this provider *with its authentication*. Otherwise the route
 *   answers 404, exactly as for an unknown key: an unconfigured provider is not an open door, and
 *   the answer does not say which providers a tenant uses.
 * - `checkHead`: the credentials the headers carry (basic auth, bearer, the SNS topic header), so a
 *   wrong one costs no body read. Signatures over the body (Mailgun, SNS) are the adapter's.
 * - `maxBodyBytes`: the most this provider ever posts, when well below INBOUND_BODY_LIMIT_BYTES.
 */
export interface ProviderGate {
  enabled(settings: OpenInboundSettings): boolean;
  checkHead(head: InboundHead, settings: OpenInboundSettings): void;
  maxBodyBytes?: number;
}

export const hasBasicAuth = (s: OpenInboundSettings): s is OpenInboundSettings & { username: string; password: string } =>
  s.username !== undefined && s.password !== undefined;

export interface InboundLimits {
  /** Largest single attachment kept; larger ones are dropped with the reason recorded. */
  maxAttachmentBytes: number;
  /** Most MIME parts a message may have (mailparser refuses more). */
  maxMimeParts: number;
  /** Mailgun: how old a signature timestamp may be. */
  mailgunMaxAgeMs: number;
}

export interface AdapterContext {
  tenantId: string;
  /** The tenant's settings for this provider, secrets opened (the route takes posts only for enabled providers). */
  settings: OpenInboundSettings;
  limits: InboundLimits;
  now: Date;
  sns: SnsVerifier;
  /** Fetches an attachment from Brevo with the tenant's API key (injectable for tests). */
  brevoAttachment: (downloadToken: string, apiKey: string) => Promise<Buffer>;
}

/** What an adapter hands to ingestion. `ack` = a protocol message that carries no mail (SNS confirmations). */
export type AdapterResult = { kind: 'emails'; emails: InboundEmail[]; replayToken?: string } | { kind: 'ack'; detail: string };

export const fieldError = (field: string, message: string) => new ValidationError(`invalid ${field}: ${message}`, [{ field, message }]);

export function header(req: InboundHead, name: string): string | null {
  const v = req.headers[name.toLowerCase()];
  if (Array.isArray(v)) return v[0] ?? null;
  return v ?? null;
}

export function parseJsonBody(req: InboundRequest): unknown {
  try {
    return JSON.parse(req.body.toString('utf8'));
  } catch (err) {
    throw fieldError('(body)', `malformed JSON (${(err as Error).message.slice(0, 120)})`);
  }
}

/** `Authorization: Basic` against the configured user and password, in constant time. */
export function checkBasicAuth(req: InboundHead, username: string, password: string): void {
  const m = /^Basic\s+([A-Z0-9+/=]+)\s*$/i.exec(header(req, 'authorization') ?? '');
  if (!m) throw new AuthenticationError('missing Authorization: Basic credentials');
  const given = Buffer.from(m[1]!, 'base64').toString('utf8');
  if (!constantTimeEqual(given, `${username}:${password}`)) throw new AuthenticationError('wrong basic-auth credentials');
}

export function checkBearer(req: InboundHead, secret: string): void {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header(req, 'authorization') ?? '');
  if (!m) throw new AuthenticationError('missing Authorization: Bearer <inbound secret>');
  if (!constantTimeEqual(m[1]!, secret)) throw new AuthenticationError('wrong inbound bearer secret');
}

/** The configured basic-auth pair (required when there is one), else the configured bearer token. */
export function checkBasicOrBearer(req: InboundHead, settings: OpenInboundSettings): void {
  if (hasBasicAuth(settings)) checkBasicAuth(req, settings.username, settings.password);
  else if (settings.bearerToken !== undefined) checkBearer(req, settings.bearerToken);
  else throw new AuthenticationError('no inbound credentials configured for this provider');
}

export interface FormFile {
  field: string;
  filename: string | null;
  contentType: string;
  content: Buffer;
  truncated: boolean;
  size: number;
}

/**
 * A `multipart/form-data` or urlencoded body, read from the bytes already in memory. Fields are
 * kept as raw bytes (`latin1` is a byte-preserving decoding) because SendGrid sends bodies in the
 * charset it names elsewhere; `text()` decodes them. Field size is not capped below the body size:
 * multer's 1 MB default would silently truncate SendGrid's raw `email` field.
 */
export async function parseForm(req: InboundRequest, maxFileBytes: number): Promise<{ fields: Map<string, Buffer[]>; files: FormFile[] }> {
  const contentType = header(req, 'content-type') ?? '';
  if (/^application\/x-www-form-urlencoded/i.test(contentType)) {
    const fields = new Map<string, Buffer[]>();
    for (const [k, v] of new URLSearchParams(req.body.toString('utf8'))) {
      fields.set(k, [...(fields.get(k) ?? []), Buffer.from(v, 'utf8')]);
    }
    return { fields, files: [] };
  }
  if (!/^multipart\/form-data/i.test(contentType))
    throw fieldError('(body)', `expected multipart/form-data or urlencoded, got ${contentType || 'no Content-Type'}`);
  return new Promise((resolve, reject) => {
    const fields = new Map<string, Buffer[]>();
    const files: FormFile[] = [];
    let bb: Busboy.Busboy;
    try {
      bb = Busboy({
        headers: req.headers,
        defCharset: 'latin1',
        defParamCharset: 'utf8',
        limits: { fieldSize: req.body.length + 1, fileSize: maxFileBytes, fields: 10_000, files: 1000, parts: 11_000 },
      });
    } catch (err) {
      reject(fieldError('(body)', `unreadable multipart body (${(err as Error).message})`));
      return;
    }
    bb.on('field', (name, value) => fields.set(name, [...(fields.get(name) ?? []), Buffer.from(value, 'latin1')]));
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (!truncated) chunks.push(c);
      });
      stream.on('limit', () => {
        truncated = true;
        chunks.length = 0;
      });
      stream.on('end', () => {
        files.push({
          field: name,
          filename: info.filename ? cleanHeaderValue(info.filename, 255) : null,
          contentType: info.mimeType || 'application/octet-stream',
          content: Buffer.concat(chunks),
          truncated,
          size,
        });
      });
    });
    bb.on('error', (err: Error) => reject(fieldError('(body)', `unreadable multipart body (${err.message})`)));
    bb.on('close', () => resolve({ fields, files }));
    Readable.from([req.body]).pipe(bb);
  });
}

/** Decodes bytes in a named charset; an unknown label falls back to UTF-8 (never throws). */
export function decodeCharset(bytes: Buffer, charset: string | null | undefined): string {
  const label = (charset ?? 'utf-8').trim() || 'utf-8';
  try {
    return new TextDecoder(label, { fatal: false }).decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

export const fieldText = (fields: Map<string, Buffer[]>, name: string, charset?: string | null): string | null => {
  const v = fields.get(name)?.[0];
  return v === undefined ? null : decodeCharset(v, charset ?? 'utf-8');
};

/** `Name: value` lines (folded continuation lines joined) → header list. */
export function parseHeaderBlock(block: string): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && out.length > 0) {
      out[out.length - 1]!.value = cleanHeaderValue(`${out[out.length - 1]!.value} ${line.trim()}`);
      continue;
    }
    const m = /^([\x21-\x39\x3b-\x7e]{1,76}):\s?(.*)$/.exec(line);
    if (m) out.push({ name: m[1]!, value: cleanHeaderValue(m[2]!) });
    if (out.length >= 500) break;
  }
  return out;
}

export const headerValue = (headers: Array<{ name: string; value: string }>, name: string): string | null =>
  headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value ?? null;

/** An uploaded part kept, or dropped with the reason when over the limit. */
export function keepOrDrop(
  file: {
    filename: string | null;
    contentType: string;
    content: Buffer;
    size: number;
    truncated?: boolean;
    contentId?: string | null;
    inline?: boolean;
  },
  limits: Pick<InboundLimits, 'maxAttachmentBytes'>,
  parts: InboundPart[],
  dropped: DroppedPart[],
): void {
  if (file.truncated || file.size > limits.maxAttachmentBytes) {
    dropped.push({
      filename: file.filename,
      contentType: file.contentType,
      size: file.size,
      reason: `larger than the ${limits.maxAttachmentBytes}-byte attachment limit`,
    });
    return;
  }
  parts.push({
    filename: file.filename,
    contentType: file.contentType.toLowerCase(),
    contentId: file.contentId ?? null,
    disposition: file.inline ? 'inline' : 'attachment',
    content: file.content,
  });
}
