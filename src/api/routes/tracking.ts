import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router, type Request, type Response } from 'express';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TokenKind, TrackingTokens, VerifiedToken } from '../../domain/tracking/token';
import type { MessageRepository } from '../../store/messages';
import type { SuppressionRepository } from '../../store/suppressions';
import type { HitBuffer } from '../tracking/hit-buffer';
import type { HitGuard } from '../tracking/hit-guard';

/**
 * Public tracking endpoints (no API key: the signed token is the credential).
 * `GET /t/o/:token` → the pixel; `GET|HEAD /t/c/:token` → 302 to the URL signed in the token;
 * `GET /u/:token` → a confirmation page; `POST /u/:token` → unsubscribed (RFC 8058).
 *
 * The pixel and the redirect are the hot path: they are mounted before every other middleware,
 * check the HMAC, ask the guard whether to record (a repeat within the window, or a client IP over
 * its rate, is answered the same but not recorded), push the hit into the in-process buffer and
 * answer — no store or Temporal call. A token that does not verify, in any field, gets 404: never
 * a pixel, never a redirect.
 */
export interface TrackingRouteDeps {
  tokens: TrackingTokens;
  buffer: HitBuffer;
  guard: HitGuard;
  messages: MessageRepository;
  suppressions: SuppressionRepository;
  registry?: Registry;
}

/** A transparent 1×1 GIF89a (42 bytes), built once. */
export const PIXEL_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

export const PIXEL_HEADERS = {
  'Content-Type': 'image/gif',
  'Content-Length': String(PIXEL_GIF.length),
  // Gmail's proxy honours no-cache/max-age=0, so each real open reaches us (docs/tracking.md).
  'Cache-Control': 'no-cache, no-store, must-revalidate, max-age=0',
  Pragma: 'no-cache',
  Expires: '0',
};
const NOT_FOUND_HEADERS = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '10', 'Cache-Control': 'no-store' };

export function trackingRoutes(deps: TrackingRouteDeps): Router {
  const r = Router();
  const hits = new Counter({
    name: 'cartero_tracking_hits_total',
    help: 'Tracking requests by kind and outcome',
    labelNames: ['kind', 'outcome'] as const,
    registers: deps.registry ? [deps.registry] : [],
  });
  if (deps.registry) registerBufferMetrics(deps.registry, deps.buffer);
  const counted = {
    open: {
      recorded: hits.labels('open', 'recorded'),
      repeat: hits.labels('open', 'repeat'),
      rate_limited: hits.labels('open', 'rate_limited'),
    },
    click: {
      recorded: hits.labels('click', 'recorded'),
      repeat: hits.labels('click', 'repeat'),
      rate_limited: hits.labels('click', 'rate_limited'),
    },
    bad: hits.labels('any', 'not_found'),
  };

  const notFound = (res: ServerResponse) => {
    counted.bad.inc();
    res.writeHead(404, NOT_FOUND_HEADERS);
    res.end('not found\n');
  };
  const record = (req: IncomingMessage, token: string, claims: VerifiedToken, kind: 'open' | 'click') => {
    const userAgent = (req.headers['user-agent'] ?? '').slice(0, 512);
    const ip = req.socket.remoteAddress ?? '';
    const method = req.method === 'HEAD' ? 'HEAD' : 'GET';
    const header = req.headers['sec-purpose'] ?? req.headers.purpose;
    const purpose = typeof header === 'string' ? header.slice(0, 64) : null;
    const at = Date.now();
    const admission = deps.guard.admit(token, ip, () => `${method} ${purpose ?? ''} ${userAgent}`, at);
    counted[kind][admission].inc();
    if (admission !== 'recorded') return;
    deps.buffer.record({
      id: deps.buffer.nextId(),
      tenantId: claims.tenantId,
      messageId: claims.messageId,
      kind,
      recipient: claims.recipient,
      link: kind === 'click' ? (claims.link ?? null) : null,
      at,
      method,
      userAgent,
      ip,
      purpose,
    });
  };

  // Express routes GET handlers for HEAD too; Node writes no body for HEAD.
  r.get('/t/o/:token', (req, res) => {
    const token = String(req.params.token);
    const claims = deps.tokens.verify(token, 'open');
    if (!claims) return notFound(res);
    record(req, token, claims, 'open');
    res.writeHead(200, PIXEL_HEADERS);
    res.end(PIXEL_GIF);
  });

  r.get('/t/c/:token', (req, res) => {
    const token = String(req.params.token);
    const claims = deps.tokens.verify(token, 'click');
    if (!claims?.url) return notFound(res);
    record(req, token, claims, 'click');
    res.writeHead(302, { Location: claims.url, 'Cache-Control': 'no-store', 'Content-Length': '0' });
    res.end();
  });

  const unsubscribeClaims = (req: Request, res: Response, kind: TokenKind): VerifiedToken | null => {
    const claims = deps.tokens.verify(String(req.params.token), kind);
    if (!claims || claims.recipient === null) {
      notFound(res);
      return null;
    }
    return claims;
  };

  // GET never unsubscribes: link scanners prefetch every URL in a message (docs/tracking.md, rule 10).
  r.get('/u/:token', (req, res) => {
    if (!unsubscribeClaims(req, res, 'unsubscribe')) return;
    res
      .status(200)
      .set({
        'Cache-Control': 'no-store',
        'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        'Referrer-Policy': 'no-referrer',
      })
      .type('html')
      .send(
        page(
          'Unsubscribe',
          '<p>Stop receiving these emails?</p><form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>',
        ),
      );
  });

  // RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`; our own form posts the same.
  r.post('/u/:token', async (req, res) => {
    const claims = unsubscribeClaims(req, res, 'unsubscribe');
    if (!claims) return;
    const msg = await deps.messages.findAny(claims.messageId);
    const address = msg && msg.tenantId === claims.tenantId ? msg.recipients[claims.recipient!]?.address : undefined;
    if (!address) return notFound(res);
    await deps.suppressions.add(claims.tenantId, address, 'unsubscribe', 'one-click unsubscribe (RFC 8058)', `message ${claims.messageId}`);
    res
      .status(200)
      .set({ 'Cache-Control': 'no-store' })
      .type('html')
      .send(page('Unsubscribed', '<p>You are unsubscribed. You will not receive these emails any more.</p>'));
  });

  return r;
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${title}</title><style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}button{font-size:1rem;padding:.5rem 1rem}</style></head><body><h1>${title}</h1>${body}</body></html>`;
}

function registerBufferMetrics(registry: Registry, buffer: HitBuffer): void {
  new Gauge({
    name: 'cartero_tracking_buffered_hits',
    help: 'Tracking hits waiting in memory to be written',
    registers: [registry],
    collect() {
      this.set(buffer.size);
    },
  });
  const totals = new Gauge({
    name: 'cartero_tracking_buffer_hits',
    help: 'Tracking hits by what the buffer did with them since start (written, spilled to disk, replayed from disk, dropped)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      for (const state of ['written', 'spilled', 'replayed', 'dropped'] as const) totals.set({ state }, buffer.stats[state]);
    },
  });
}
