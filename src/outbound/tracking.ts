import type { FieldProblem } from '../errors';
import type { MessageCreateInput } from '../domain/message';
import type { MessageTracking } from '../domain/tracking/message';
import type { TenantSettings } from '../domain/tenant';
import { HtmlTooDeepError, rewriteHtml } from '../domain/tracking/rewrite';
import { MAX_TRACKED_URL_BYTES, type TrackingTokens } from '../domain/tracking/token';

/**
 * What tracking does to a message at compose time (POST /v1/messages, where the MIME is built
 * once): the rewritten HTML, the List-Unsubscribe headers, and what to remember on the message.
 *
 * Per-recipient tokens need per-recipient bodies, and Cartero sends one body per message (one
 * SMTP transaction, byte-identical on every retry). So the tokens name the recipient when the
 * message has exactly one; a message to several recipients gets one shared body whose tokens name
 * no recipient, and its counts are per message only (docs/tracking.md). One-click unsubscribe
 * must name who unsubscribes, so it needs exactly one recipient.
 */
export interface TrackingComposer {
  tokens: TrackingTokens;
  baseUrl: string;
}

export interface ComposedTracking {
  html: string | undefined;
  /** Prepared header values (no folding or encoding by nodemailer: they are plain ASCII). */
  headers: Record<string, { prepared: true; value: string }>;
  tracking: MessageTracking | null;
  problems: FieldProblem[];
}

export function composeTracking(
  composer: TrackingComposer,
  tenant: { id: string; settings: Pick<TenantSettings, 'tracking'> },
  body: Pick<MessageCreateInput, 'html' | 'track' | 'unsubscribe'>,
  messageId: string,
  recipientCount: number,
): ComposedTracking {
  const allowed = tenant.settings.tracking;
  // A message can only narrow what the tenant allows (and must ask).
  const opens = Boolean(body.track?.opens && allowed.opens && body.html !== undefined);
  const clicks = Boolean(body.track?.clicks && allowed.clicks && body.html !== undefined);
  const unsubscribe = body.unsubscribe !== undefined && body.unsubscribe !== false;
  const problems: FieldProblem[] = [];
  if (unsubscribe && recipientCount !== 1) {
    problems.push({
      field: 'unsubscribe',
      message: `one-click unsubscribe names the one recipient who unsubscribes; this message has ${recipientCount}: send one message per recipient`,
    });
  }
  if (!opens && !clicks && !unsubscribe) return { html: body.html, headers: {}, tracking: null, problems };

  const aggregateOnly = allowed.aggregateOnly;
  const personalised = recipientCount === 1 && !aggregateOnly;
  const recipient = personalised ? 0 : null;
  const base = composer.baseUrl;
  const claims = { tenantId: tenant.id, messageId, recipient };
  let html = body.html;
  let links: string[] = [];
  if ((opens || clicks) && html !== undefined) {
    let r: ReturnType<typeof rewriteHtml>;
    try {
      r = rewriteHtml(html, {
        opens,
        clicks,
        maxUrlBytes: MAX_TRACKED_URL_BYTES,
        clickUrl: (link, url) => `${base}/t/c/${composer.tokens.sign({ ...claims, kind: 'click', link, url })}`,
        openUrl: () => `${base}/t/o/${composer.tokens.sign({ ...claims, kind: 'open' })}`,
      });
    } catch (err) {
      if (!(err instanceof HtmlTooDeepError)) throw err;
      problems.push({ field: 'html', message: err.message });
      return { html: body.html, headers: {}, tracking: null, problems };
    }
    html = r.html;
    links = r.links;
  }
  const headers: ComposedTracking['headers'] = {};
  if (unsubscribe && problems.length === 0) {
    const url = `${base}/u/${composer.tokens.sign({ tenantId: tenant.id, messageId, recipient: 0, kind: 'unsubscribe' })}`;
    const mailto =
      typeof body.unsubscribe === 'object' && body.unsubscribe.mailto ? `, <mailto:${body.unsubscribe.mailto}?subject=unsubscribe>` : '';
    headers['List-Unsubscribe'] = { prepared: true, value: `<${url}>${mailto}` };
    headers['List-Unsubscribe-Post'] = { prepared: true, value: 'List-Unsubscribe=One-Click' };
  }
  return { html, headers, tracking: { opens, clicks, links, personalised, aggregateOnly, unsubscribe }, problems };
}
