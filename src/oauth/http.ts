import { promises as dns, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import tls from 'node:tls';
import { addressRefusal, isIpLiteral, type AllowableClass } from '../domain/network';
import { CarteroError, IdentityProviderUnavailableError, OAuthCredentialsError } from '../errors';

const SETTING = 'OAUTH_ALLOW_PRIVATE_NETWORKS';

/**
 * The one HTTP client every identity-provider call goes through (google-auth-library through its
 * `fetchImplementation`, MSAL through its `networkClient`, the generic token endpoint directly), so
 * two rules hold everywhere: the private-network guard (a tenant can name its own token URL or
 * authority, which must not become a way into our network), and an optional private CA for
 * air-gapped identity providers (OAUTH_CA_FILE), trusted in addition to the public roots.
 */
export interface IdpHttpOptions {
  allowPrivateNetworks: readonly AllowableClass[];
  extraCa?: string;
  timeoutMs?: number;
}

export type IdpFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

const MAX_RESPONSE_BYTES = 1024 * 1024;

export function createIdpFetch(opts: IdpHttpOptions): IdpFetch {
  const ca = opts.extraCa ? [...tls.rootCertificates, opts.extraCa] : undefined;
  const timeoutMs = opts.timeoutMs ?? 30_000;

  // Resolve, check every address, then connect to a checked one (a mixed answer is refused whole).
  const guardedLookup: LookupFunction = (hostname, options, callback) => {
    const family = typeof options === 'object' && options && 'family' in options ? Number(options.family) || 0 : 0;
    const all = typeof options === 'object' && options !== null && 'all' in options && options.all === true;
    dns
      .lookup(hostname, { all: true, verbatim: true, family })
      .then((addresses: LookupAddress[]) => {
        for (const a of addresses) {
          const refusal = addressRefusal(a.address, opts.allowPrivateNetworks, SETTING);
          if (refusal) throw new OAuthCredentialsError(`identity provider host ${hostname} refused: ${refusal}`, 'address_refused');
        }
        const first = addresses[0];
        if (!first) throw new IdentityProviderUnavailableError(`identity provider host ${hostname} has no address`);
        if (all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        else callback(null, first.address, first.family);
      })
      .catch((err: Error) => callback(err as NodeJS.ErrnoException, '', 0));
  };

  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new OAuthCredentialsError(`unsupported URL scheme ${url.protocol}`, 'invalid_request');
    if (isIpLiteral(url.hostname)) {
      const refusal = addressRefusal(url.hostname.replace(/^\[|\]$/g, ''), opts.allowPrivateNetworks, SETTING);
      if (refusal) throw new OAuthCredentialsError(`identity provider address refused: ${refusal}`, 'address_refused');
    }
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => {
      headers[k] = v;
    });
    if (body) headers['content-length'] = String(body.length);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method: request.method,
          headers,
          lookup: guardedLookup,
          timeout: timeoutMs,
          ...(url.protocol === 'https:' && ca ? { ca } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              req.destroy(new IdentityProviderUnavailableError(`identity provider answer over ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (Array.isArray(v)) v.forEach((x) => h.append(k, x));
              else if (v !== undefined) h.set(k, v);
            }
            const status = res.statusCode ?? 502;
            // Response refuses a body on these statuses.
            const noBody = status === 204 || status === 304;
            resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, headers: h }));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new IdentityProviderUnavailableError(`identity provider did not answer within ${timeoutMs} ms`)));
      req.on('error', (err) =>
        reject(err instanceof CarteroError ? err : new IdentityProviderUnavailableError(`cannot reach ${url.host}: ${err.message}`)),
      );
      if (init?.signal)
        init.signal.addEventListener('abort', () => req.destroy(new IdentityProviderUnavailableError('request aborted')), { once: true });
      req.end(body);
    });
  };
}
