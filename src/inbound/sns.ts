import { X509Certificate, verify } from 'node:crypto';
import { z } from 'zod';
import { AuthenticationError, ValidationError } from '../errors';

/**
 * Amazon SNS HTTP(S) message signatures (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA).
 * The signing certificate is fetched only from an SNS host (`sns.<region>.amazonaws.com`, `.cn`
 * too) over https and cached per URL; the fetcher is injectable so tests can sign with their own
 * certificate. A valid signature proves only that SNS sent it — anyone can subscribe our URL from
 * their own account — so the caller also checks TopicArn against the tenant's.
 */
export type CertFetcher = (url: string) => Promise<string>;

export const snsMessageSchema = z.object({
  Type: z.enum(['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation']),
  MessageId: z.string().min(1).max(200),
  TopicArn: z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w.-]{1,256}$/, 'must be an SNS topic ARN'),
  Message: z.string(),
  Timestamp: z.string().min(1).max(64),
  SignatureVersion: z.enum(['1', '2']),
  Signature: z.string().min(1).max(4096),
  SigningCertURL: z.string().min(1).max(2048),
  Subject: z.string().max(1000).optional(),
  Token: z.string().max(4096).optional(),
  SubscribeURL: z.string().max(4096).optional(),
  UnsubscribeURL: z.string().max(4096).optional(),
});
export type SnsMessage = z.infer<typeof snsMessageSchema>;

const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$/;

/** An https URL on an SNS host; anything else is refused before any request is made. */
export function isSnsUrl(raw: string, pathPattern?: RegExp): boolean {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return false;
  }
  return (
    u.protocol === 'https:' &&
    SNS_HOST.test(u.hostname) &&
    (u.port === '' || u.port === '443') &&
    !u.username &&
    (!pathPattern || pathPattern.test(u.pathname))
  );
}

/** The canonical string SNS signs: `Key\nValue\n` for a fixed key list that depends on the type. */
export function stringToSign(m: SnsMessage): string {
  const keys =
    m.Type === 'Notification'
      ? (['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] as const)
      : (['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'] as const);
  let out = '';
  for (const k of keys) {
    const v = m[k];
    if (v === undefined) continue; // Subject is signed only when present
    out += `${k}\n${v}\n`;
  }
  return out;
}

export class SnsVerifier {
  private readonly cache = new Map<string, X509Certificate>();

  constructor(
    private readonly fetchCert: CertFetcher,
    private readonly maxCached = 50,
  ) {}

  async verify(m: SnsMessage, now = new Date()): Promise<void> {
    if (!isSnsUrl(m.SigningCertURL, /\.pem$/))
      throw new AuthenticationError('SigningCertURL is not an https .pem URL on an Amazon SNS host');
    const cert = await this.certificate(m.SigningCertURL);
    if (now < new Date(cert.validFrom) || now > new Date(cert.validTo))
      throw new AuthenticationError('the SNS signing certificate is not valid now');
    const alg = m.SignatureVersion === '1' ? 'sha1' : 'sha256';
    let ok = false;
    try {
      ok = verify(alg, Buffer.from(stringToSign(m), 'utf8'), cert.publicKey, Buffer.from(m.Signature, 'base64'));
    } catch {
      ok = false;
    }
    if (!ok) throw new AuthenticationError('the SNS message signature does not verify');
  }

  private async certificate(url: string): Promise<X509Certificate> {
    const hit = this.cache.get(url);
    if (hit) return hit;
    let pem: string;
    try {
      pem = await this.fetchCert(url);
    } catch (err) {
      // Amazon unreachable is our problem, not the sender's: 5xx so SNS retries.
      throw new Error(`cannot fetch the SNS signing certificate ${url}: ${(err as Error).message}`);
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      throw new AuthenticationError('the SNS signing certificate is not a PEM certificate');
    }
    if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(url, cert);
    return cert;
  }
}

/** Production fetchers: plain https GETs with a timeout, only to SNS hosts (checked by the callers). */
export const fetchSnsCertificate: CertFetcher = async (url) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
};

export async function confirmSnsSubscription(url: string): Promise<void> {
  if (!isSnsUrl(url)) {
    const message = 'is not an https URL on an Amazon SNS host';
    throw new ValidationError(`invalid SubscribeURL: ${message}`, [{ field: 'SubscribeURL', message }]);
  }
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
  if (!res.ok) throw new Error(`SNS subscription confirmation answered HTTP ${res.status}`);
}
