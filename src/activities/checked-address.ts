import { promises as dns } from 'node:dns';
import { addressRefusal, isIpLiteral, type AllowableClass } from '../domain/network';

/**
 * The SSRF guard for a tenant's mail server: resolves `host` once and checks every address, so the
 * caller connects to a checked address (with the name kept for TLS). Letting the mail library
 * resolve on its own would bypass the guard (DNS rebinding). `refused` names the first bad address.
 */
export async function checkedAddresses(
  host: string,
  allowed: readonly AllowableClass[],
): Promise<{ addresses: string[]; refused: string | null }> {
  const addresses = isIpLiteral(host) ? [host] : (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  for (const a of addresses) {
    const refusal = addressRefusal(a, allowed);
    if (refusal) return { addresses, refused: refusal };
  }
  return { addresses, refused: null };
}

/** The name the server's certificate must carry: the configured one, else the host unless it is an IP. */
export function tlsServername(host: string, configured: string | undefined): string | undefined {
  return configured ?? (isIpLiteral(host) ? undefined : host);
}
