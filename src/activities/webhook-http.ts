import { promises as dns, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { addressRefusal, isIpLiteral, type AllowableClass } from '../domain/network';
import { parseRetryAfter, type WebhookAttemptOutcome } from '../domain/webhooks';

/**
 * One webhook POST, bounded in time, to an address that passed the private-network guard. The
 * host is resolved and every address checked first, then the connection is made to the checked
 * address (a custom `lookup`) while TLS and `Host` still use the name: resolving twice would let a
 * DNS answer change in between (rebinding). Redirects are not followed (Standard Webhooks: 3xx is
 * a failure; the product should update the URL).
 */
export interface WebhookPost {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  allowPrivateNetworks: readonly AllowableClass[];
}

export interface WebhookPostResult extends WebhookAttemptOutcome {
  durationMs: number;
}

const MAX_RESPONSE_BYTES = 4096;

export async function postWebhook(req: WebhookPost): Promise<WebhookPostResult> {
  const started = Date.now();
  const done = (o: WebhookAttemptOutcome): WebhookPostResult => ({ ...o, durationMs: Date.now() - started });
  const url = new URL(req.url);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  let addresses: string[];
  try {
    addresses = isIpLiteral(host) ? [host] : (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch (err) {
    return done({ status: null, error: `DNS lookup of ${host} failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
  }
  for (const a of addresses) {
    const refusal = addressRefusal(a, req.allowPrivateNetworks, 'WEBHOOK_ALLOW_PRIVATE_NETWORKS');
    if (refusal) return done({ status: null, error: `webhook host ${host} refused: ${refusal}`, refused: true });
  }
  const address = addresses[0]!;
  const family = net.isIP(address);
  const lookup = (_h: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (opts?.all) cb(null, [{ address, family } satisfies LookupAddress]);
    else cb(null, address, family);
  };
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<WebhookPostResult>((resolve) => {
    let settled = false;
    const finish = (o: WebhookAttemptOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(done(o));
    };
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...req.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(req.body) },
        lookup: lookup as unknown as net.LookupFunction,
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const retryAfterMs = parseRetryAfter(res.headers['retry-after'], Date.now());
        let received = 0;
        // Only the head matters; a little of the body is read so the connection ends cleanly.
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > MAX_RESPONSE_BYTES) {
            finish({ status, error: null, retryAfterMs });
            res.destroy();
          }
        });
        res.on('end', () => finish({ status, error: null, retryAfterMs }));
        res.on('error', () => finish({ status, error: null, retryAfterMs }));
      },
    );
    const timer = setTimeout(() => {
      finish({ status: null, error: `no response within ${req.timeoutMs} ms` });
      request.destroy();
    }, req.timeoutMs);
    request.on('error', (err: NodeJS.ErrnoException) => finish({ status: null, error: networkError(err) }));
    request.end(req.body);
  });
}

function networkError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset by the receiver';
    case 'ETIMEDOUT':
      return 'connection timed out';
    default:
      return err.code ? `${err.code}: ${err.message}` : err.message;
  }
}
