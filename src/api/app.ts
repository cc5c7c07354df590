import express, { type Express } from 'express';
import type { Client, Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../config/env';
import { loggablePath } from '../logging';
import { NotFoundError } from '../errors';
import type { Keyring } from '../security/crypto';
import type { StoreDeps } from '../store/repositories';
import { EncryptionCodec } from '../temporal/codec';
import { wakeWaitingSends } from '../temporal/wake-waiting-sends';
import { authenticate } from './auth';
import { createApiMetrics, type ApiMetrics } from './metrics';
import { presetLabel } from '../metrics/labels';
import { errorHandler } from './problem';
import { codecRoutes } from './routes/codec';
import { messageRoutes } from './routes/messages';
import { suppressionRoutes } from './routes/suppressions';
import { opsRoutes } from './routes/ops';
import { tenantRoutes } from './routes/tenants';
import { webhookRoutes } from './routes/webhooks';
import { oauthCallbackRoutes, oauthCredentialsChanged, oauthStartRoutes, type OAuthRouteDeps } from './routes/oauth';
import { OAuthProviders } from '../oauth/providers';
import { bounceMailboxRoutes } from './routes/bounce-mailbox';
import { trackingRoutes } from './routes/tracking';
import type { Tracking } from './tracking';
import { caseRoutes } from './routes/cases';
import { inboundMessageRoutes, inboundSettingsRoutes, inboundWebhookRoutes, type InboundRouteDeps } from './routes/inbound';
import { providerEventRoutes } from './routes/provider-events';
import { brevoAttachmentFetcher } from '../inbound/providers/brevo';
import { confirmSnsSubscription, fetchSnsCertificate, SnsVerifier, type CertFetcher } from '../inbound/sns';
import type { AdapterContext } from '../inbound/request';

/** The repositories are the process's own (src/store/repositories.ts), built once and passed in. */
export interface AppDeps extends StoreDeps {
  config: Config;
  logger: Logger;
  temporal: Client;
  temporalConnection: Connection;
  keyring: Keyring;
  version: string;
  isShuttingDown?: () => boolean;
  onDeliverySettingsChanged?: (tenantId: string) => Promise<void>;
  /** The registry the metrics listener serves (src/server.ts); a fresh one when not given. */
  metrics?: ApiMetrics;
  /** Opens/clicks/unsubscribe; its owner flushes it at shutdown (src/server.ts). */
  tracking: Tracking;
  /** Inbound fetchers, injectable for tests. */
  snsCertFetcher?: CertFetcher;
  snsConfirm?: (subscribeUrl: string) => Promise<void>;
  brevoAttachment?: AdapterContext['brevoAttachment'];
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const metrics = deps.metrics ?? createApiMetrics();
  const { tracking, cases, inbound } = deps;
  // First, before metrics and logging middleware: the pixel and redirect are the hot path.
  app.use(
    trackingRoutes({
      tokens: tracking.tokens,
      buffer: tracking.buffer,
      guard: tracking.guard,
      messages: deps.messages,
      suppressions: deps.suppressions,
      registry: metrics.registry,
    }),
  );
  app.use(metrics.middleware);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      deps.logger.debug(
        { method: req.method, path: loggablePath(req.path), status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'request',
      );
    });
    next();
  });

  app.use(
    opsRoutes({
      store: deps.store,
      temporalCheck: () => deps.temporalConnection.healthService.check({}),
      adminKey: deps.config.adminKey,
      version: deps.version,
      isShuttingDown: deps.isShuttingDown ?? (() => false),
    }),
  );

  // The consent callback is reached by a browser coming back from the provider: its signed state is
  // the credential, not an API key.
  const oauthDeps: OAuthRouteDeps = {
    tenants: deps.tenants,
    oauthTokens: deps.oauthTokens,
    providers: new OAuthProviders(deps.config.oauth),
    keyring: deps.keyring,
    config: deps.config.oauth,
    onCredentialsChanged: (tenantId) => onDeliverySettingsChanged(deps, tenantId),
  };
  app.use(oauthCallbackRoutes(oauthDeps));
  // Inbound webhooks authenticate by their URL key and the provider's own scheme, not by API key.
  const inboundDeps: InboundRouteDeps = {
    tenants: deps.tenants,
    inbound,
    cases,
    messages: deps.messages,
    events: deps.events,
    temporal: deps.temporal,
    taskQueue: deps.config.temporal.taskQueue,
    subjectWindowMs: deps.config.inbound.subjectWindowMs,
    limits: deps.config.inbound,
    bodyLimitBytes: deps.config.inbound.bodyLimitBytes,
    maxConcurrentBodies: deps.config.inbound.maxConcurrentBodies,
    sns: new SnsVerifier(deps.snsCertFetcher ?? fetchSnsCertificate),
    snsConfirm: deps.snsConfirm ?? confirmSnsSubscription,
    brevoAttachment: deps.brevoAttachment ?? brevoAttachmentFetcher(),
    suppressions: deps.suppressions,
    pause: { permits: deps.permits, policy: deps.config.send.policy },
  };
  app.use(inboundWebhookRoutes(inboundDeps));
  // Relay events (delivery, bounce, complaint, delay) authenticate the same way (docs/provider-events.md).
  app.use(providerEventRoutes(inboundDeps));

  // Everything under /v1 needs a key, unknown paths included, so the API does not map itself to strangers.
  app.use('/v1', authenticate(deps.config.adminKey, deps.tenants));
  // Messages carry attachments (base64 in JSON): their own, larger limit.
  app.use('/v1/messages', express.json({ limit: deps.config.send.messageBodyLimitBytes, strict: true, type: 'application/json' }));
  // After authentication, so a stranger's malformed body gets 401, not a parse error.
  // Only bodies declared as JSON are parsed; parseBody answers 415 for anything else.
  app.use(express.json({ limit: deps.config.http.bodyLimitBytes, strict: true, type: 'application/json' }));
  app.use(
    codecRoutes({
      codec: new EncryptionCodec(deps.keyring),
      auth: deps.config.codec.auth,
      adminKey: deps.config.adminKey,
      corsOrigins: deps.config.codec.corsOrigins,
    }),
  );

  app.use(
    tenantRoutes({
      tenants: deps.tenants,
      temporal: deps.temporal,
      taskQueue: deps.config.temporal.taskQueue,
      allowPrivateNetworks: deps.config.smtp.allowPrivateNetworks,
      onDeliverySettingsChanged: deps.onDeliverySettingsChanged ?? ((tenantId) => onDeliverySettingsChanged(deps, tenantId)),
      deletionSettleMs: deps.config.tenants.deletionSettleMs,
      healthIntervalMs: deps.config.tenants.healthIntervalMs,
      warn: (msg, fields) => deps.logger.warn(fields, msg),
    }),
  );
  app.use(oauthStartRoutes(oauthDeps));
  app.use(
    messageRoutes({
      tenants: deps.tenants,
      messages: deps.messages,
      temporal: deps.temporal,
      sendTaskQueue: deps.config.temporal.sendTaskQueue,
      policy: deps.config.send.policy,
      permitMarginMs: deps.config.send.permitMarginMs,
      tracking,
      cases,
      inbound,
      onAccepted: (preset) => metrics.accepted.inc({ preset: presetLabel(preset) }),
      onCancelSignalError: (workflowId, err) => deps.logger.warn({ workflowId, err: err.message }, 'could not signal a cancel to its send'),
    }),
  );

  app.use(inboundSettingsRoutes({ tenants: deps.tenants, inbound }));
  app.use(inboundMessageRoutes({ inbound }));
  app.use(caseRoutes({ cases, temporal: deps.temporal, taskQueue: deps.config.temporal.taskQueue }));
  app.use(suppressionRoutes({ tenants: deps.tenants, suppressions: deps.suppressions }));
  app.use(
    webhookRoutes({
      tenants: deps.tenants,
      events: deps.events,
      deliveries: deps.webhookDeliveries,
      temporal: deps.temporal,
      taskQueue: deps.config.temporal.taskQueue,
    }),
  );

  app.use(
    bounceMailboxRoutes({
      tenants: deps.tenants,
      bounceMailboxes: deps.bounceMailboxes,
      temporal: deps.temporal,
      taskQueue: deps.config.temporal.taskQueue,
      allowPrivateNetworks: deps.config.smtp.allowPrivateNetworks,
    }),
  );

  app.use((req, _res, next) => next(new NotFoundError('route', `${req.method} ${req.path}`)));
  app.use(errorHandler(deps.logger));
  return app;
}

async function onDeliverySettingsChanged(deps: AppDeps, tenantId: string): Promise<void> {
  await wakeWaitingSends(deps.messages, deps.temporal, tenantId, (workflowId, err) =>
    deps.logger.warn({ workflowId, err: err.message }, 'could not wake a waiting send'),
  );
  await oauthCredentialsChanged(
    { client: deps.temporal, taskQueue: deps.config.temporal.taskQueue, refreshMarginMs: deps.config.oauth.refreshMarginMs },
    deps.tenants,
    tenantId,
  );
}
