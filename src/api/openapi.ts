import { z } from 'zod';
import { MESSAGE_STATUSES, messageCreateSchema } from '../domain/message';
import { tenantCreateSchema, tenantPatchSchema } from '../domain/tenant';
import { CASE_EVENT_KINDS } from '../domain/cases';
import { INBOUND_PROVIDERS } from '../domain/inbound/email';
import { RELAY_EVENT_PROVIDERS } from '../domain/provider-events';
import { inboundSettingsSchemas } from './routes/inbound';
import { suppressedAddressParam, suppressionCreateSchema } from '../domain/suppression';
import { EVENT_TYPES } from '../domain/events';
import { DELIVERY_STATES } from '../domain/webhooks';
import { bounceMailboxPutSchema, WATCH_STATES } from '../domain/bounce-mailbox';
import { MAX_TOKEN_CHARS } from '../domain/tracking/token';
import { caseIdSchema, deliveryIdSchema, inboundKeySchema, inboundMessageIdSchema, messageIdSchema, tenantIdSchema } from './params';

/**
 * The OpenAPI 3.1 document, with request schemas generated from the same zod schemas that validate
 * requests, so the document cannot drift from what the API accepts.
 */
type Json = Record<string, unknown>;

const schema = (s: z.ZodType): Json => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
};

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});
const json = (description: string, ref?: string) => ({
  description,
  content: { 'application/json': { schema: ref ? { $ref: `#/components/schemas/${ref}` } : { type: 'object' } } },
});
const common = {
  '400': problem('Invalid input; `errors` names each field'),
  '401': problem('Missing or wrong API key'),
  '404': problem('Not found, or not visible to this key'),
  '413': problem('Body over the size limit'),
  '415': problem('Body is not application/json'),
};
const pathParam = (name: string, s: z.ZodType, description?: string) => ({
  name,
  in: 'path',
  required: true,
  schema: schema(s),
  ...(description ? { description } : {}),
});
const tenantIdParam = pathParam('id', tenantIdSchema);
const messageIdParam = pathParam('id', messageIdSchema);
const caseIdParam = pathParam('id', caseIdSchema);
const inboundMessageIdParam = pathParam('id', inboundMessageIdSchema);
const deliveryIdParam = pathParam('id', deliveryIdSchema);
const tokenParam = {
  name: 'token',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[\\w-]+$', maxLength: MAX_TOKEN_CHARS },
};
const tenantQuery = { name: 'tenantId', in: 'query', schema: schema(tenantIdSchema), description: 'required with the admin key' };
const cursorQuery = { name: 'cursor', in: 'query', schema: { type: 'string', maxLength: 200 } };

export function buildOpenApi(version: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cartero',
      version,
      description:
        "Durable multi-tenant email through each tenant's own mail server. Authenticate with `Authorization: Bearer <key>`: the admin key, or a tenant API key (which sees only its tenant).",
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            instance: { type: 'string' },
            code: { type: 'string', description: 'Machine-readable cause of OAuth problems' },
            errors: {
              type: 'array',
              items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
            },
          },
        },
        TenantCreate: schema(tenantCreateSchema),
        TenantPatch: schema(tenantPatchSchema),
        MessageCreate: schema(messageCreateSchema),
        MessageAccepted: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            messageId: { type: 'string' },
            caseId: { type: ['string', 'null'] },
            status: { type: 'string' },
          },
        },
        Message: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            messageId: { type: 'string', description: 'RFC 5322 Message-ID on the tenant domain' },
            status: { type: 'string', enum: [...MESSAGE_STATUSES] },
            reason: { type: ['string', 'null'], description: 'Why a terminal status was reached' },
            lastReply: { type: ['string', 'null'], description: 'The last SMTP reply, verbatim' },
            recipients: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  address: { type: 'string' },
                  kind: { type: 'string' },
                  status: { type: 'string' },
                  reply: { type: ['string', 'null'] },
                },
              },
            },
            attempts: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  n: { type: 'integer' },
                  at: { type: 'string' },
                  durationMs: { type: 'integer' },
                  outcome: { type: 'string' },
                  reply: { type: 'string' },
                },
              },
            },
            sentCopy: {
              type: ['object', 'null'],
              description:
                'The copy in the sender\'s Sent folder (IMAP APPEND after a 250; docs/sending.md "Sent copy"); null when not copied (off, or the provider files it itself) or not yet',
              properties: {
                status: { type: 'string', enum: ['appended', 'failed', 'skipped'] },
                at: { type: 'string', format: 'date-time' },
                reason: { type: ['string', 'null'] },
                folder: { type: ['string', 'null'], description: 'The mailbox flagged \\Sent it went to' },
              },
            },
          },
        },
        Tenant: {
          type: 'object',
          description: 'A tenant as returned: secrets are never included, only `<name>Set: true` flags.',
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            preset: { type: ['string', 'null'] },
            domains: { type: 'array', items: { type: 'string' } },
            smtp: { type: 'object' },
            auth: { type: 'object' },
            limits: { type: 'object' },
            tracking: { type: 'object' },
            inbound: { type: 'object', properties: { key: { type: 'string' }, forwardingAddresses: { type: 'array' } } },
            webhook: { type: ['object', 'null'] },
            status: { type: 'string', enum: ['active', 'needs_reauth', 'suspended'] },
            verify: {
              type: 'object',
              description: 'What verify tries beyond the connection; `{}` when unset',
              properties: {
                senders: { type: 'array', items: { type: 'string' } },
                probeRecipient: { type: 'string' },
                dkimSelectors: { type: 'array', items: { type: 'string' } },
              },
            },
            sentCopy: { type: 'string', enum: ['auto', 'on', 'off'], description: 'Sent-folder copy (docs/sending.md); absent = auto' },
            returnPath: {
              type: ['string', 'null'],
              description: 'Envelope sender (MAIL FROM) of every message; null = each message\'s From (docs/sending.md "Envelope sender")',
            },
            sentCopyPlan: {
              type: 'object',
              description: 'What sentCopy means for this tenant now: `{append: true, imap}` or `{append: false, reason}`',
              properties: { append: { type: 'boolean' }, imap: { type: 'object' }, reason: { type: 'string' } },
            },
            imap: {
              type: 'object',
              description: "IMAP server of the Sent copy (default: the preset's, or the SMTP host for cPanel/Zimbra/Exchange)",
              properties: { host: { type: 'string' }, port: { type: 'integer' }, security: { type: 'string', enum: ['tls', 'starttls'] } },
            },
            warnings: { type: 'array', items: { $ref: '#/components/schemas/TenantWarning' } },
            health: {
              type: 'object',
              description:
                'What the scheduled verify and real sends found lately: `degraded` after an auth/TLS/settings failure of a send or a failed verify, `healthy` again at the next success; each change is a `tenant.health` event',
              required: ['status', 'reason', 'since', 'checkedAt'],
              properties: {
                status: { type: 'string', enum: ['healthy', 'degraded'] },
                reason: { type: ['string', 'null'] },
                since: { type: 'string', format: 'date-time' },
                checkedAt: { type: ['string', 'null'], format: 'date-time' },
              },
            },
            settingsVersion: { type: 'integer' },
            createdAt: { type: 'string', format: 'date-time' },
            updatedAt: { type: 'string', format: 'date-time' },
          },
        },
        TenantWarning: {
          type: 'object',
          description: 'A standing problem of the setup (`basic_auth_retirement`: Microsoft 365 with a password)',
          properties: {
            code: { type: 'string', enum: ['basic_auth_retirement'] },
            message: { type: 'string' },
            fix: { type: 'string' },
            docs: { type: 'string' },
          },
        },
        VerifyFinding: {
          type: 'object',
          required: ['check', 'status', 'message'],
          properties: {
            check: {
              type: 'string',
              enum: ['connection', 'mail_from', 'send_as', 'relay', 'size', 'spf', 'dkim', 'dmarc', 'basic_auth_retirement'],
            },
            status: { type: 'string', enum: ['pass', 'warn', 'fail'] },
            subject: { type: 'string', description: 'A sender address or a DNS name' },
            message: { type: 'string' },
            reply: { type: 'string', description: "The server's exact reply" },
            record: { type: 'string', description: 'The DNS record seen (at most 512 characters)' },
            fix: { type: 'string', description: 'What the tenant admin does about it' },
          },
        },
        VerifyResult: {
          type: 'object',
          properties: {
            ok: { type: 'boolean', description: 'Every connection step and envelope check passed (DNS findings do not count)' },
            failedStep: {
              type: 'string',
              enum: ['dns', 'tcp', 'greeting', 'ehlo', 'starttls', 'tls', 'auth', 'mail', 'rcpt', 'rset'],
            },
            reply: { type: 'string', description: "The server's exact reply at the failed step" },
            error: { type: 'string' },
            steps: { type: 'array', items: { type: 'object' } },
            capabilities: { type: 'array', items: { type: 'string' } },
            tls: { type: 'object' },
            sizeLimit: { type: 'integer', description: 'SIZE announced in EHLO (RFC 1870)' },
            envelope: {
              type: 'array',
              description: 'MAIL FROM / RCPT TO per sender, each ended by RSET (nothing is sent)',
              items: {
                type: 'object',
                properties: {
                  sender: { type: 'string' },
                  recipient: { type: 'string' },
                  ok: { type: 'boolean' },
                  mailFrom: { type: 'string' },
                  rcptTo: { type: 'string' },
                },
              },
            },
            status: { type: 'string', enum: ['pass', 'warn', 'fail'], description: 'The worst finding' },
            findings: { type: 'array', items: { $ref: '#/components/schemas/VerifyFinding' } },
            warnings: { type: 'array', items: { $ref: '#/components/schemas/TenantWarning' } },
          },
        },
        WebhookDelivery: {
          type: 'object',
          description: 'One event sent (or skipped) to the tenant webhook; `id` is the `webhook-id` header the receiver saw.',
          properties: {
            id: { type: 'string', description: '`msg_` + 32 hex; the webhook-id header' },
            eventId: { type: 'string' },
            eventType: { type: 'string', enum: [...EVENT_TYPES] },
            caseId: { type: ['string', 'null'] },
            messageId: { type: ['string', 'null'] },
            state: {
              type: 'string',
              enum: [...DELIVERY_STATES],
              description:
                'pending (queued or retrying), delivered (2xx), failed (gave up, 410, refused address), skipped (no webhook URL)',
            },
            reason: { type: ['string', 'null'], description: 'Why it failed or was skipped; the last failure while retrying' },
            attemptCount: { type: 'integer' },
            redeliveries: { type: 'integer' },
            attempts: {
              type: 'array',
              description: 'The most recent 50 attempts',
              items: {
                type: 'object',
                properties: {
                  n: { type: 'integer' },
                  at: { type: 'string', format: 'date-time' },
                  round: { type: 'integer', description: '0 = original delivery, 1… = manual redeliveries' },
                  url: { type: 'string' },
                  status: { type: ['integer', 'null'], description: 'HTTP status; null when no response (see error)' },
                  error: { type: ['string', 'null'] },
                  durationMs: { type: 'integer' },
                },
              },
            },
            eventCreatedAt: { type: 'string', format: 'date-time' },
            createdAt: { type: 'string', format: 'date-time' },
            updatedAt: { type: 'string', format: 'date-time' },
            completedAt: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        Case: {
          type: 'object',
          description: 'The summary the case workflow keeps (participants, counts per event kind, activity, open/closed).',
          properties: {
            id: { type: 'string' },
            tenantId: { type: 'string' },
            status: { type: 'string', enum: ['open', 'closed'] },
            subject: { type: ['string', 'null'] },
            participants: { type: 'array', items: { type: 'string' } },
            counts: { type: 'object', properties: Object.fromEntries(CASE_EVENT_KINDS.map((k) => [k, { type: 'integer' }])) },
            eventCount: { type: 'integer' },
            firstActivityAt: { type: ['string', 'null'], format: 'date-time' },
            lastActivityAt: { type: ['string', 'null'], format: 'date-time' },
            lastInboundAt: { type: ['string', 'null'], format: 'date-time' },
            closedAt: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        CaseTimeline: {
          type: 'object',
          properties: {
            items: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  kind: { type: 'string', enum: [...CASE_EVENT_KINDS] },
                  at: { type: 'string', format: 'date-time' },
                  ref: { type: ['string', 'null'] },
                  data: { type: 'object' },
                },
              },
            },
            nextCursor: { type: ['string', 'null'] },
          },
        },
        InboundReceived: {
          type: 'object',
          properties: {
            received: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'string', description: 'i_… (use as inReplyTo to answer it)' },
                  duplicate: { type: 'boolean' },
                  kind: { type: 'string', enum: ['human', 'autoreply', 'bounce', 'complaint', 'delay'] },
                  caseId: { type: ['string', 'null'] },
                  rule: { type: 'string', description: 'Threading rule that matched' },
                  dropped: { type: 'integer', description: 'Parts not kept (reasons stored with the message)' },
                },
              },
            },
            ack: { type: 'string', description: 'SNS subscription/unsubscribe confirmations carry no mail' },
          },
        },
        ...Object.fromEntries(Object.entries(inboundSettingsSchemas).map(([p, s]) => [`InboundSettings_${p}`, schema(s)])),
        CodecPayloads: {
          type: 'object',
          properties: {
            payloads: {
              type: 'array',
              items: {
                type: 'object',
                properties: { metadata: { type: 'object', additionalProperties: { type: 'string' } }, data: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/tenants': {
        post: {
          summary: 'Create a tenant (admin key). Returns its API key and webhook secret once.',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/TenantCreate' } } } },
          responses: {
            '201': json('Created: `{tenant, apiKey, webhookSecret}`'),
            '409': problem('Tenant id taken (or its deletion is still running)'),
            ...common,
          },
        },
      },
      '/v1/tenants/{id}': {
        parameters: [tenantIdParam],
        get: { summary: 'Read a tenant', responses: { '200': json('The tenant', 'Tenant'), ...common } },
        patch: {
          summary: 'Change a tenant: nested objects merge, `auth` is replaced whole, `null` removes a limit or the webhook',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/TenantPatch' } } } },
          responses: {
            '200': json('The tenant after the change', 'Tenant'),
            '403': problem('`status` needs the admin key'),
            '409': problem('Changed concurrently'),
            ...common,
            '400': problem('Invalid input, or an endpoint (smtp host, port, TLS trust) moved without `auth`; `errors` names each field'),
          },
        },
        delete: {
          summary: 'Delete a tenant (admin key): gone and its keys revoked at once; its data is removed by the `delete-<id>` workflow',
          responses: { '202': json('Deleting: `{id, status: "deleting", workflowId}`'), ...common },
        },
      },
      '/v1/tenants/{id}/api-key': {
        parameters: [tenantIdParam],
        post: { summary: 'Issue a new API key, revoking the old one (admin key)', responses: { '201': json('`{apiKey}`'), ...common } },
      },
      '/v1/tenants/{id}/verify': {
        parameters: [tenantIdParam],
        post: {
          summary:
            "Test the tenant's SMTP server (DNS, TCP, TLS, EHLO, AUTH, then MAIL FROM/RCPT TO/RSET per sender, nothing sent) and the SPF/DKIM/DMARC of its domains; each finding with the server's exact reply or the record seen, and the fix",
          responses: {
            '200': json('The probe result (also when the server refused)', 'VerifyResult'),
            '503': problem('Temporal or the store is unavailable'),
            ...common,
          },
        },
      },
      '/v1/tenants/{id}/oauth/{provider}/start': {
        parameters: [
          tenantIdParam,
          { name: 'provider', in: 'path', required: true, schema: { type: 'string', enum: ['google', 'microsoft'] } },
        ],
        get: {
          summary:
            "Start the OAuth2 consent for a tenant's delegated mode (refresh_token): 302 to the provider's consent page with a signed, expiring, single-use state and PKCE",
          responses: {
            '302': json('Redirect to the provider; the body repeats `{authorizeUrl, expiresAt}`'),
            '400': problem('The tenant has no consent flow for this provider or mode'),
            '401': common['401'],
            '404': common['404'],
          },
        },
      },
      '/v1/oauth/callback': {
        get: {
          summary:
            'Where the provider sends the browser back after consent. No API key: the signed state is the credential. Exchanges the code, stores the refresh token sealed, activates the tenant, resumes its sends',
          security: [],
          parameters: [
            { name: 'state', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'code', in: 'query', schema: { type: 'string' } },
            { name: 'error', in: 'query', schema: { type: 'string' } },
            { name: 'error_description', in: 'query', schema: { type: 'string' } },
          ],
          responses: {
            '200': json('`{tenantId, provider, status, tokenWorkflowId}` (an HTML page for browsers)'),
            '400': problem(
              'Consent refused: `code` is access_denied, invalid_state, expired_state, replayed_state, provider_error or exchange_failed (an HTML page for browsers)',
            ),
            '502': problem('The identity provider could not be reached'),
          },
        },
      },
      '/v1/messages': {
        post: {
          summary: "Send a message through the tenant's server. 202 once durable; the same idempotencyKey returns the same message.",
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/MessageCreate' } } } },
          responses: {
            '202': json('Accepted', 'MessageAccepted'),
            '409': problem('Tenant suspended'),
            '503': problem('Temporal unavailable; retry with the same idempotencyKey'),
            ...common,
            '400': problem(
              'Invalid input, `errors` names each field; with tracking on, also `html` nested more than 512 elements deep (the rewrite refuses it rather than walk it)',
            ),
          },
        },
        get: {
          summary: "List the tenant's messages, newest first",
          parameters: [
            tenantQuery,
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...MESSAGE_STATUSES] } },
            { name: 'caseId', in: 'query', schema: schema(caseIdSchema) },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
            cursorQuery,
          ],
          responses: { '200': json('`{items: Message[], nextCursor}`'), ...common },
        },
      },
      '/v1/messages/{id}': {
        parameters: [messageIdParam],
        get: {
          summary:
            'Status, per-recipient results and attempts; `tracking`: opens and clicks by class (human/machine), link and recipient, and the rules that decided',
          responses: { '200': json('The message', 'Message'), ...common },
        },
        delete: {
          summary: 'Cancel a message not inside an SMTP transaction',
          responses: { '200': json('The cancelled message', 'Message'), '409': problem('Already sending or finished'), ...common },
        },
      },
      '/v1/inbound/{provider}/{inboundKey}': {
        parameters: [
          { name: 'provider', in: 'path', required: true, schema: { type: 'string', enum: [...INBOUND_PROVIDERS] } },
          pathParam('inboundKey', inboundKeySchema, "The tenant's inbound key (GET /v1/tenants/{id} → inbound.key)"),
        ],
        post: {
          summary:
            "Inbound mail from a provider's webhook, in that provider's documented format (docs/inbound.md). 200 only once stored; idempotent per Message-ID.",
          security: [],
          requestBody: {
            required: true,
            description:
              'By provider: application/json for brevo and postmark (ses: SNS posts JSON as text/plain); multipart/form-data for sendgrid (parsed or raw) and mailgun; application/x-www-form-urlencoded for mailgun; message/rfc822 for mime (Authorization: Bearer <inbound secret>)',
            content: {
              'application/json': { schema: { type: 'object' } },
              'text/plain': { schema: { type: 'string' } },
              'multipart/form-data': { schema: { type: 'object' } },
              'application/x-www-form-urlencoded': { schema: { type: 'object' } },
              'message/rfc822': { schema: { type: 'string' } },
            },
          },
          responses: {
            '200': json('Stored (or a duplicate of a stored message), or an SNS confirmation acknowledged', 'InboundReceived'),
            '400': problem('Malformed payload, missing fields, unreadable MIME; `errors` names the field'),
            '401': problem('Wrong signature, credentials or SNS topic; replayed Mailgun token'),
            '404': problem('Unknown inbound key, unknown provider, or a provider the tenant did not enable (one answer for all three)'),
            '413': problem('Body over INBOUND_BODY_LIMIT_BYTES'),
            '415': problem('Unsupported Content-Encoding'),
            '500': problem('Internal failure: the provider should retry'),
            '503': problem(
              'INBOUND_MAX_CONCURRENT bodies already being read (Retry-After), or store/Temporal unavailable: the provider should retry',
            ),
          },
        },
      },
      '/v1/inbound/mailgun/{inboundKey}/mime': {
        parameters: [pathParam('inboundKey', inboundKeySchema)],
        post: {
          summary: 'Mailgun raw-MIME route target (Mailgun posts `body-mime` only to URLs ending in `mime`); same answers as above',
          security: [],
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': { schema: { type: 'object' } },
              'application/x-www-form-urlencoded': { schema: { type: 'object' } },
            },
          },
          responses: {
            '200': json('Stored', 'InboundReceived'),
            '400': problem('Malformed'),
            '401': problem('Wrong signature; replayed token'),
            '404': problem('Unknown key, or Mailgun not enabled for the tenant'),
          },
        },
      },
      '/v1/provider-events/{provider}/{inboundKey}': {
        parameters: [
          { name: 'provider', in: 'path', required: true, schema: { type: 'string', enum: [...RELAY_EVENT_PROVIDERS] } },
          pathParam('inboundKey', inboundKeySchema, "The tenant's inbound key (GET /v1/tenants/{id} → inbound.key)"),
        ],
        post: {
          summary:
            "A relay's delivery, bounce, complaint and delay webhook, in that relay's documented format (docs/provider-events.md); authenticated by the tenant's inbound settings for the provider",
          security: [],
          requestBody: {
            required: true,
            description: 'JSON (SES: an SNS message, posted as text/plain; SendGrid: an array of events, signed)',
            content: { 'application/json': { schema: { type: 'object' } }, 'text/plain': { schema: { type: 'string' } } },
          },
          responses: {
            '200': { description: 'Every event applied: `{received, ignored, unmatched, applied[]}`, or an SNS confirmation acknowledged' },
            '400': problem('Malformed payload; `errors` names the field'),
            '401': problem('Wrong signature or credentials, a stale signature timestamp, a foreign SNS topic, a replayed Mailgun token'),
            '404': problem('Unknown inbound key, unknown provider, or a provider without event credentials (one answer for all)'),
            '413': problem('Body over 2 MiB'),
            '503': problem('Store or Temporal unavailable, or too many bodies at once: the relay should retry'),
          },
        },
      },
      '/v1/tenants/{id}/inbound/{provider}': {
        parameters: [
          tenantIdParam,
          { name: 'provider', in: 'path', required: true, schema: { type: 'string', enum: [...INBOUND_PROVIDERS] } },
        ],
        put: {
          summary:
            'Enable a provider for inbound mail with its credentials (a provider without settings answers 404): brevo basic auth (`username`,`password`) or `bearerToken` (one required), plus `apiKey` for attachments; sendgrid basic auth and/or `eventVerificationKey` (relay events); postmark basic auth (required); mailgun `signingKey`; ses `topicArns`; mime `bearerToken` (generated and shown once if omitted)',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { oneOf: INBOUND_PROVIDERS.map((p) => ({ $ref: `#/components/schemas/InboundSettings_${p}` })) },
              },
            },
          },
          responses: { '200': json('The settings, secrets shown only as `<name>Set: true`'), ...common },
        },
        get: { summary: "A provider's inbound settings (no secrets)", responses: { '200': json('The settings'), ...common } },
        delete: { summary: "Remove a provider's inbound settings", responses: { '204': { description: 'Removed' }, ...common } },
      },
      '/v1/inbound-messages/{id}': {
        parameters: [inboundMessageIdParam],
        get: {
          summary:
            'A received message: addresses, subject, text, HTML, headers, parts (metadata), dropped parts with reasons, classification, threading rule, case',
          responses: { '200': json('The message'), ...common },
        },
      },
      '/v1/inbound-messages/{id}/parts/{index}': {
        parameters: [
          inboundMessageIdParam,
          { name: 'index', in: 'path', required: true, schema: { type: 'integer', minimum: 0, maximum: 10_000 } },
        ],
        get: {
          summary: 'Download one stored part (attachment or inline image)',
          responses: { '200': { description: 'The bytes, as an attachment' }, ...common },
        },
      },
      '/v1/cases/{id}': {
        parameters: [caseIdParam, tenantQuery],
        get: {
          summary: 'A case: participants, counts, last activity, open/closed',
          responses: { '200': json('The case', 'Case'), ...common },
        },
      },
      '/v1/cases/{id}/timeline': {
        parameters: [
          caseIdParam,
          tenantQuery,
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
          cursorQuery,
        ],
        get: {
          summary: "A case's events, oldest first (inbound, autoreply, sent, delivery_failed, opened, clicked, bounced, closed, reopened)",
          responses: { '200': json('Events', 'CaseTimeline'), ...common },
        },
      },
      '/v1/cases/{id}/close': {
        parameters: [caseIdParam, tenantQuery],
        post: {
          summary: 'Close a case (a workflow update; a later human reply reopens it)',
          responses: { '200': json('The case after the change', 'Case'), '503': problem('Temporal unavailable'), ...common },
        },
      },
      '/v1/cases/{id}/reopen': {
        parameters: [caseIdParam, tenantQuery],
        post: {
          summary: 'Reopen a case',
          responses: { '200': json('The case after the change', 'Case'), '503': problem('Temporal unavailable'), ...common },
        },
      },
      '/v1/suppressions': {
        get: {
          summary: "List the tenant's suppressed addresses (hard bounces, complaints, unsubscribes, manual), newest first",
          parameters: [
            tenantQuery,
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
            cursorQuery,
          ],
          responses: { '200': json('`{items: Suppression[], nextCursor}`'), ...common },
        },
        post: {
          summary: 'Suppress an address by hand (source `manual`); 200 with the existing entry if it is already suppressed',
          requestBody: { required: true, content: { 'application/json': { schema: schema(suppressionCreateSchema) } } },
          responses: { '201': json('Added'), '200': json('Already suppressed: the existing entry'), ...common },
        },
      },
      '/v1/suppressions/{address}': {
        parameters: [pathParam('address', suppressedAddressParam), tenantQuery],
        get: { summary: 'One suppressed address', responses: { '200': json('The entry'), ...common } },
        delete: {
          summary: 'Remove an address from the suppression list (sends to it resume)',
          responses: { '204': { description: 'Removed' }, ...common },
        },
      },
      '/v1/tenants/{id}/bounce-mailbox': {
        parameters: [tenantIdParam],
        put: {
          summary:
            "Set the tenant's bounce mailbox (IMAP) and start or restart its watch; the password may be omitted to keep the stored one",
          requestBody: { required: true, content: { 'application/json': { schema: schema(bounceMailboxPutSchema) } } },
          responses: {
            '201': json('Created; the watch starts'),
            '200': json('Replaced; the watch restarts'),
            '503': problem('Saved, but Temporal is unavailable; PUT again'),
            ...common,
          },
        },
        get: {
          summary: `Settings (no password), the watch's status (state: ${WATCH_STATES.join(', ')}; error) and counters`,
          responses: { '200': json('The bounce mailbox'), ...common },
        },
        delete: { summary: 'Remove the bounce mailbox; the watch stops', responses: { '204': { description: 'Removed' }, ...common } },
      },
      '/v1/webhooks/deliveries': {
        get: {
          summary: "The tenant's webhook delivery log, newest first, with every attempt",
          parameters: [
            tenantQuery,
            { name: 'state', in: 'query', schema: { type: 'string', enum: [...DELIVERY_STATES] } },
            { name: 'eventType', in: 'query', schema: { type: 'string', enum: [...EVENT_TYPES] } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
            cursorQuery,
          ],
          responses: { '200': json('`{items: WebhookDelivery[], nextCursor}`'), ...common },
        },
      },
      '/v1/webhooks/deliveries/{id}': {
        parameters: [deliveryIdParam],
        get: { summary: 'One delivery with its attempts', responses: { '200': json('The delivery', 'WebhookDelivery'), ...common } },
      },
      '/v1/webhooks/deliveries/{id}/redeliver': {
        parameters: [deliveryIdParam],
        post: {
          summary: 'Send a finished (delivered, failed or skipped) delivery again, as a new round with its own retries; same webhook-id',
          responses: {
            '202': json('Reopened; `state` is pending', 'WebhookDelivery'),
            '409': problem('Still pending, or the tenant has no webhook URL'),
            '503': problem('Temporal unavailable; retry'),
            ...common,
          },
        },
      },
      '/v1/webhooks/test': {
        post: {
          summary: 'Send a `webhook.test` event to the tenant webhook through the normal delivery path; follow it in the delivery log',
          requestBody: {
            required: false,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { tenantId: { type: 'string', description: 'required with the admin key' } },
                  additionalProperties: false,
                },
              },
            },
          },
          responses: { '202': json('`{eventId, deliveryId}`'), '409': problem('The tenant has no webhook URL'), ...common },
        },
      },
      '/codec/decode': {
        post: {
          summary: 'Temporal Web UI remote codec: decrypt payloads',
          requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/CodecPayloads' } } } },
          responses: { '200': json('Decoded payloads', 'CodecPayloads'), ...common },
        },
      },
      '/codec/encode': {
        post: {
          summary: 'Temporal Web UI remote codec: encrypt payloads',
          requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/CodecPayloads' } } } },
          responses: { '200': json('Encoded payloads', 'CodecPayloads'), ...common },
        },
      },
      '/healthz': {
        get: { summary: 'Liveness: `ok` (text/plain), nothing else', security: [], responses: { '200': { description: '`ok`' } } },
      },
      '/readyz': {
        get: {
          summary:
            'Readiness: store and Temporal reachable. `ready` / `not ready` (text/plain); each check with its error only for the admin key (JSON) and on the metrics listener (METRICS_PORT), which also serves /metrics',
          security: [],
          responses: { '200': { description: '`ready`' }, '503': { description: '`not ready`' } },
        },
      },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': json('OpenAPI 3.1') } } },
      // Public tracking endpoints (links inside sent mail): the signed token is the credential.
      '/t/o/{token}': {
        parameters: [tokenParam],
        get: {
          summary: 'Open pixel: a 1×1 GIF with no-cache headers; the open is recorded off the response path (HEAD too)',
          security: [],
          responses: {
            '200': { description: 'The GIF', content: { 'image/gif': {} } },
            '404': { description: 'Token forged or tampered' },
          },
        },
      },
      '/t/c/{token}': {
        parameters: [tokenParam],
        get: {
          summary:
            'Click redirect: 302 to the URL signed in the token (the one in the message); the click is recorded off the response path (HEAD too)',
          security: [],
          responses: {
            '302': { description: 'Location: the original URL' },
            '404': { description: 'Token forged or tampered: never a redirect' },
          },
        },
      },
      '/u/{token}': {
        parameters: [tokenParam],
        get: {
          summary: 'Unsubscribe confirmation page with a POST form (GET never unsubscribes)',
          security: [],
          responses: { '200': { description: 'HTML page' }, '404': { description: 'Bad token' } },
        },
        post: {
          summary: 'One-click unsubscribe (RFC 8058, body `List-Unsubscribe=One-Click`): suppresses the recipient for the tenant',
          security: [],
          responses: {
            '200': { description: 'HTML confirmation' },
            '404': { description: 'Bad token' },
            '503': problem('Store unavailable; the mail client retries'),
          },
        },
      },
    },
  };
}
