import { AuthenticationError } from '../../errors';
import { fromRawMime } from '../mime';
import { checkBearer, header, type AdapterContext, type AdapterResult, type InboundRequest } from '../request';

/**
 * The raw RFC 5322 message as the body (`Content-Type: message/rfc822`), for forwarding from any
 * MTA or script (a Postfix pipe, procmail, a sieve filter, `curl --data-binary @mail.eml`).
 * Authenticated by the tenant's bearer secret. `X-Original-To` (request header) names the envelope
 * recipient when the forwarder knows it.
 */
export async function parseMime(req: InboundRequest, ctx: AdapterContext): Promise<AdapterResult> {
  if (!ctx.settings?.bearerToken)
    throw new AuthenticationError('no inbound bearer secret configured for this tenant (PUT /v1/tenants/{id}/inbound/mime)');
  checkBearer(req, ctx.settings.bearerToken);
  const originalTo = header(req, 'x-original-to');
  return {
    kind: 'emails',
    emails: [await fromRawMime(req.body, 'mime', ctx.limits, { envelopeTo: originalTo ? [originalTo.trim().toLowerCase()] : [] })],
  };
}
