import { createHmac } from 'node:crypto';

/**
 * Reply tokens: `local+<token>@domain` in the Reply-To of outbound mail, so a reply that lost its
 * threading headers still finds its case. 16 lower-case base32 characters of an HMAC over the case
 * id keyed by the tenant's inbound key: unguessable, and immune to servers that lower-case local
 * parts. The token → case map is stored (reply_tokens), so the HMAC is never recomputed on receipt.
 */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

export function replyTokenFor(inboundKey: string, caseId: string): string {
  const mac = createHmac('sha256', inboundKey).update(`reply-token:${caseId}`).digest();
  let out = '';
  for (let i = 0; i < 16; i++) out += ALPHABET[mac[i]! & 31];
  return out;
}

/** `replies+abc…@acme.example` for the tenant's first forwarding address, or null if it would not fit. */
export function replyAddress(forwardingAddress: string, token: string): string | null {
  const at = forwardingAddress.lastIndexOf('@');
  const local = `${forwardingAddress.slice(0, at).split('+')[0]}+${token}`;
  return local.length <= 64 ? `${local}${forwardingAddress.slice(at)}` : null;
}

/** Every reply token found in the given addresses (`anything+<token>@…`). */
export function replyTokensIn(addresses: string[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    const m = /\+([a-z2-7]{16})@/i.exec(a);
    if (m && !out.includes(m[1]!.toLowerCase())) out.push(m[1]!.toLowerCase());
  }
  return out;
}
