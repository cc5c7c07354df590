import { Router, type Request } from 'express';
import { z } from 'zod';
import { INBOUND_PROVIDERS, type InboundProvider } from '../../domain/inbound/email';
import { tenantIdSchema } from '../../domain/tenant';
import { AuthenticationError, NotFoundError, orNullIfNotFound, ValidationError } from '../../errors';
import { inboundBounceHandler, type BounceHandler } from '../../inbound/bounces';
import type { BounceHandlingDeps } from '../../inbound/feedback';
import type { SuppressionRepository } from '../../store/suppressions';
import { ingestEmail, inboundIdFor, type IngestDeps, type IngestResult } from '../../inbound/ingest';
import { BodySlots, withBody } from '../../inbound/body';
import { brevoGate, parseBrevo } from '../../inbound/providers/brevo';
import { mailgunGate, parseMailgun } from '../../inbound/providers/mailgun';
import { mimeGate, parseMime } from '../../inbound/providers/mime';
import { parsePostmark, postmarkGate } from '../../inbound/providers/postmark';
import { parseSendgrid, sendgridGate } from '../../inbound/providers/sendgrid';
import { parseSes, sesGate } from '../../inbound/providers/ses';
import type { AdapterContext, AdapterResult, InboundLimits, InboundRequest, ProviderGate } from '../../inbound/request';
import type { SnsVerifier } from '../../inbound/sns';
import { generateSecret } from '../../security/crypto';
import type { InboundDoc, InboundRepository, InboundSettingsDoc, InboundSecretField, OpenInboundSettings } from '../../store/inbound';
import type { TenantRepository } from '../../store/tenants';
import { sealScopeOf } from '../../store/tenant-seal';
import { principalOf, requireTenantAccess } from '../auth';
import { parseBody, parseParam } from '../validate';
import { providerEventsEnabled } from '../../inbound/provider-events/gates';

export interface InboundRouteDeps extends Omit<IngestDeps, 'onBounce'> {
  tenants: TenantRepository;
  inbound: InboundRepository;
  limits: InboundLimits;
  bodyLimitBytes: number;
  /** Bodies read and handled at once by this process (INBOUND_MAX_CONCURRENT). */
  maxConcurrentBodies: number;
  sns: SnsVerifier;
  snsConfirm: (subscribeUrl: string) => Promise<void>;
  brevoAttachment: AdapterContext['brevoAttachment'];
  suppressions: SuppressionRepository;
  /** Quota refusals reported by DSN or relay event pause the tenant's sending (src/inbound/feedback.ts). */
  pause?: BounceHandlingDeps['pause'];
  onBounce?: BounceHandler;
}

const providerSchema = z.enum(INBOUND_PROVIDERS);
const inboundKeySchema = z.string().regex(/^[\w-]{8,100}$/, 'not an inbound key');

interface Adapter {
  gate: ProviderGate;
  parse: (req: InboundRequest, ctx: AdapterContext, deps: InboundRouteDeps) => Promise<AdapterResult>;
}
const ADAPTERS: Record<InboundProvider, Adapter> = {
  brevo: { gate: brevoGate, parse: (req, ctx) => parseBrevo(req, ctx) },
  sendgrid: { gate: sendgridGate, parse: (req, ctx) => parseSendgrid(req, ctx) },
  ses: { gate: sesGate, parse: (req, ctx, deps) => parseSes(req, ctx, deps.snsConfirm) },
  mailgun: { gate: mailgunGate, parse: (req, ctx) => parseMailgun(req, ctx) },
  postmark: { gate: postmarkGate, parse: (req, ctx) => parsePostmark(req, ctx) },
  mime: { gate: mimeGate, parse: (req, ctx) => parseMime(req, ctx) },
};

/** One answer for an unknown key, an unknown provider and a provider the tenant did not enable. */
const notFound = () => new NotFoundError('inbound key or provider', '(given)');

/**
 * Who the request is for, decided from the URL and headers alone: the provider, the tenant its key
 * names, and that the tenant enabled this provider with its authentication (else 404), then the
 * credentials the headers carry (else 401). No byte of the body has been read yet.
 */
async function admit(
  deps: InboundRouteDeps,
  req: Request,
): Promise<{ provider: InboundProvider; tenantId: string; settings: OpenInboundSettings }> {
  const provider = providerSchema.safeParse(req.params.provider);
  if (!provider.success) throw notFound();
  if (req.path.endsWith('/mime') && provider.data !== 'mailgun') throw new NotFoundError('route', `POST ${req.path}`);
  const { tenantId, settings } = await admitProvider(deps, req, provider.data, ADAPTERS[provider.data].gate);
  return { provider: provider.data, tenantId, settings };
}

/**
 * The tenant the URL's inbound key names, its settings for `provider`, enabled by `gate`, and the
 * header credentials the gate checks: 404 (one answer) for an unknown key or a provider not enabled,
 * 401 for wrong credentials. Shared by inbound mail and relay events (provider-events.ts).
 */
export async function admitProvider(
  deps: Pick<InboundRouteDeps, 'inbound' | 'tenants'>,
  req: Request,
  provider: InboundProvider,
  gate: ProviderGate,
): Promise<{ tenantId: string; settings: OpenInboundSettings }> {
  const key = inboundKeySchema.safeParse(req.params.inboundKey);
  const tenantId = key.success ? await deps.inbound.tenantForKey(key.data) : null;
  // Only a missing tenant is "unknown key"; a store failure answers 5xx so the provider retries.
  const tenant = tenantId ? await orNullIfNotFound(deps.tenants.get(tenantId)) : null;
  if (!tenant || tenant.inboundKey !== key.data) throw notFound();
  const settingsDoc = await deps.inbound.getSettings(tenant._id, provider);
  const settings = settingsDoc ? deps.inbound.openSettings(settingsDoc, sealScopeOf(tenant)) : null;
  if (!settings || !gate.enabled(settings)) throw notFound();
  gate.checkHead({ headers: req.headers }, settings);
  return { tenantId: tenant._id, settings };
}

/**
 * `POST /v1/inbound/:provider/:inboundKey`: mounted before API-key authentication (providers
 * authenticate by the key in the URL plus what each offers: signatures, basic auth, a bearer).
 * Answers 200 only after every message of the request is stored; 401 wrong credentials, 404
 * unknown key, unknown provider or provider not enabled for the tenant, 400 malformed, 413 too
 * large, 503 too many bodies at once or a dependency down, 5xx on our failures so the provider retries.
 *
 * The body is read last: key, provider and header credentials first, then the declared size, then
 * a place among INBOUND_MAX_CONCURRENT; then it streams in under the limit (the provider's own,
 * when lower) and is cut off as soon as it passes it.
 */
export function inboundWebhookRoutes(deps: InboundRouteDeps): Router {
  const r = Router();
  const ingestDeps: IngestDeps = { ...deps, onBounce: deps.onBounce ?? inboundBounceHandler(deps) };
  const slots = new BodySlots(deps.maxConcurrentBodies);
  // Mailgun posts raw MIME only to a URL ending in `mime`: `/v1/inbound/mailgun/<key>/mime`.
  r.post(['/v1/inbound/:provider/:inboundKey', '/v1/inbound/:provider/:inboundKey/mime'], async (req, res) => {
    // Until the body has been read, any answer closes the connection: otherwise Node would read (and
    // throw away) the rest of the body to keep the connection open, the very bytes refused here.
    res.setHeader('Connection', 'close');
    const { provider, tenantId, settings } = await admit(deps, req);
    const adapter = ADAPTERS[provider];
    await withBody(req, res, slots, Math.min(deps.bodyLimitBytes, adapter.gate.maxBodyBytes ?? Infinity), async (body) => {
      const ctx: AdapterContext = {
        tenantId,
        settings,
        limits: deps.limits,
        now: new Date(),
        sns: deps.sns,
        brevoAttachment: deps.brevoAttachment,
      };
      const result = await adapter.parse({ headers: req.headers, body }, ctx, deps);
      if (result.kind === 'ack') {
        res.json({ ack: result.detail });
        return;
      }
      if (result.replayToken !== undefined) {
        const ids = result.emails.map((m) => inboundIdFor(tenantId, m));
        const firstUse = await deps.inbound.claimReplayToken(tenantId, result.replayToken, ids);
        // The same token with the same message is the provider retrying one delivery; anything else is a replay.
        if (firstUse !== null && firstUse.join() !== ids.join())
          throw new AuthenticationError('this Mailgun token was already used (replayed request)');
      }
      const received: IngestResult[] = [];
      for (const mail of result.emails) received.push(await ingestEmail(ingestDeps, tenantId, mail, ctx.now));
      res.json({ received });
    });
  });
  return r;
}

const basic = {
  username: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^:\s]+$/, 'no colons or spaces'),
  password: z.string().min(8).max(200),
};
const secret = z
  .string()
  .min(16)
  .max(500)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');
const SETTINGS_SCHEMAS = {
  brevo: z.strictObject({ ...partial(basic), bearerToken: secret.optional(), apiKey: z.string().min(1).max(500).optional() }),
  sendgrid: z.strictObject({
    ...partial(basic),
    // The Event Webhook's verification key (Mail Settings → Signed Event Webhook): base64 of a DER public key.
    eventVerificationKey: z
      .string()
      .min(60)
      .max(400)
      .regex(/^[a-z0-9+/]+={0,2}$/i, 'base64 of the public key SendGrid shows')
      .optional(),
  }),
  postmark: z.strictObject(basic),
  mailgun: z.strictObject({ signingKey: z.string().min(8).max(500) }),
  ses: z.strictObject({
    topicArns: z
      .array(z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w.-]{1,256}$/, 'must be an SNS topic ARN'))
      .min(1)
      .max(20),
  }),
  mime: z.strictObject({ bearerToken: secret.optional() }),
} satisfies Record<InboundProvider, z.ZodType>;
export const inboundSettingsSchemas = SETTINGS_SCHEMAS;

function partial<T extends Record<string, z.ZodType>>(shape: T): { [K in keyof T]: z.ZodOptional<T[K]> } {
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v.optional()])) as { [K in keyof T]: z.ZodOptional<T[K]> };
}

function settingsView(doc: InboundSettingsDoc) {
  return {
    provider: doc.provider,
    ...doc.clear,
    ...Object.fromEntries(Object.keys(doc.sealed).map((k) => [`${k}Set`, true])),
    updatedAt: doc.updatedAt.toISOString(),
  };
}

/** `PUT|GET|DELETE /v1/tenants/:id/inbound/:provider`: each provider's inbound credentials (secrets sealed, never returned). */
export function inboundSettingsRoutes(deps: Pick<InboundRouteDeps, 'tenants' | 'inbound'>): Router {
  const r = Router();
  const params = async (req: Request) => {
    const id = parseParam(req.params.id, 'id', tenantIdSchema);
    requireTenantAccess(req, id);
    const provider = parseParam(req.params.provider, 'provider', providerSchema);
    const tenant = await deps.tenants.get(id);
    return { id, provider, tenant };
  };
  r.put('/v1/tenants/:id/inbound/:provider', async (req, res) => {
    const { provider, tenant } = await params(req);
    const body = parseBody(req, SETTINGS_SCHEMAS[provider]) as Record<string, unknown>;
    if ((body.username === undefined) !== (body.password === undefined)) {
      throw new ValidationError('invalid password', [{ field: 'password', message: 'username and password go together' }]);
    }
    let generated: string | undefined;
    if (provider === 'mime' && body.bearerToken === undefined) body.bearerToken = generated = generateSecret('ibs_');
    const secrets: Partial<Record<InboundSecretField, string>> = {};
    for (const f of ['password', 'bearerToken', 'signingKey', 'apiKey'] as const) if (typeof body[f] === 'string') secrets[f] = body[f];
    const clear: InboundSettingsDoc['clear'] = {};
    if (typeof body.username === 'string') clear.username = body.username;
    if (Array.isArray(body.topicArns)) clear.topicArns = body.topicArns as string[];
    if (typeof body.eventVerificationKey === 'string') clear.eventVerificationKey = body.eventVerificationKey;
    // Settings are what enables a provider (inbound mail, relay events): without its authentication they would enable nothing.
    const open = { ...clear, ...secrets };
    if (!ADAPTERS[provider].gate.enabled(open) && !providerEventsEnabled(provider, open)) {
      const message =
        provider === 'sendgrid'
          ? 'needs basic-auth credentials (username and password) or an eventVerificationKey'
          : 'needs basic-auth credentials (username and password) or a bearerToken';
      throw new ValidationError(`invalid ${provider} settings: ${message}`, [{ field: '(body)', message }]);
    }
    const doc = await deps.inbound.putSettings(sealScopeOf(tenant), provider, clear, secrets);
    // A generated secret is shown once, like API keys.
    res.json({ ...settingsView(doc), ...(generated ? { bearerToken: generated } : {}) });
  });
  r.get('/v1/tenants/:id/inbound/:provider', async (req, res) => {
    const { id, provider } = await params(req);
    const doc = await deps.inbound.getSettings(id, provider);
    if (!doc) throw new NotFoundError('inbound settings', `${id}/${provider}`);
    res.json(settingsView(doc));
  });
  r.delete('/v1/tenants/:id/inbound/:provider', async (req, res) => {
    const { id, provider } = await params(req);
    if (!(await deps.inbound.deleteSettings(id, provider))) throw new NotFoundError('inbound settings', `${id}/${provider}`);
    res.status(204).end();
  });
  return r;
}

const inboundIdSchema = z.string().regex(/^i_[a-f0-9]{32}$/, 'must be an inbound message id (i_…)');

/** The received message as the product reads it: content, parts (metadata), and every decision made. */
export function inboundMessageView(doc: InboundDoc) {
  return {
    id: doc._id,
    tenantId: doc.tenantId,
    provider: doc.provider,
    providerId: doc.providerId,
    messageId: doc.messageId,
    inReplyTo: doc.inReplyTo,
    references: doc.references,
    from: doc.from,
    to: doc.to,
    cc: doc.cc,
    replyTo: doc.replyTo,
    envelopeTo: doc.envelopeTo,
    subject: doc.subject,
    date: doc.date?.toISOString() ?? null,
    text: doc.text,
    html: doc.html,
    truncated: doc.truncated,
    headers: doc.headers,
    parts: doc.parts.map((p, index) => ({
      index,
      filename: p.filename,
      contentType: p.contentType,
      contentId: p.contentId,
      disposition: p.disposition,
      size: p.size,
    })),
    dropped: doc.dropped,
    spamScore: doc.spamScore,
    kind: doc.kind,
    classification: doc.classification,
    caseId: doc.caseId,
    threading: doc.threading,
    bounceHandling: doc.bounceHandling ?? null,
    receivedAt: doc.receivedAt.toISOString(),
  };
}

/** `GET /v1/inbound-messages/:id` and `…/parts/:index`: a received message and its attachments (tenant-scoped; 404 across tenants). */
export function inboundMessageRoutes(deps: Pick<InboundRouteDeps, 'inbound'>): Router {
  const r = Router();
  const load = async (req: Request) => {
    const id = parseParam(req.params.id, 'id', inboundIdSchema);
    const p = principalOf(req);
    const doc = await deps.inbound.find(id);
    if (!doc || (p.kind === 'tenant' && doc.tenantId !== p.tenantId)) throw new NotFoundError('inbound message', id);
    return doc;
  };
  r.get('/v1/inbound-messages/:id', async (req, res) => {
    res.json(inboundMessageView(await load(req)));
  });
  r.get('/v1/inbound-messages/:id/parts/:index', async (req, res) => {
    const doc = await load(req);
    const index = parseParam(req.params.index, 'index', z.coerce.number().int().min(0).max(10_000));
    const part = doc.parts[index];
    if (!part) throw new NotFoundError('part', `${doc._id}/${index}`);
    const content = await deps.inbound.readFile(part.fileId);
    // Served as a download, never rendered by the browser on our origin.
    res
      .status(200)
      .type(part.contentType.split(';')[0] || 'application/octet-stream')
      .setHeader('X-Content-Type-Options', 'nosniff')
      .setHeader('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(part.filename ?? `part-${index}`)}`)
      .send(content);
  });
  return r;
}
