import { fromRawMime } from '../mime';
import { checkBearer, header, type AdapterContext, type AdapterResult, type InboundRequest, type ProviderGate } from '../request';

/**
 * The raw RFC 5322 message as the body (`Content-Type: message/rfc822`), for forwarding from any
 * MTA or script (a Postfix pipe, procmail, a sieve filter, `curl --data-binary @mail.eml`).
 * Authenticated by the tenant's bearer secret (a header: checked before the body). `X-Original-To` (request header) names the envelope
 * recipient when the forwarder knows it.
 */
export const mimeGate: ProviderGate = {
  enabled: (s) => s.bearerToken !== undefined,
  checkHead: (head, s) => checkBearer(head, s.bearerToken ?? ''),
};

export async function parseMime(req: InboundRequest, ctx: AdapterContext): Promise<AdapterResult> {
  const originalTo = header(req, 'x-original-to');
  return {
    kind: 'emails',
    emails: [await fromRawMime(req.body, 'mime', ctx.limits, { envelopeTo: originalTo ? [originalTo.trim().toLowerCase()] : [] })],
  };
}
