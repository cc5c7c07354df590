import type { Client } from '@temporalio/client';
import { decideAfterAttempt, type NextStep } from '../domain/delivery';
import { TERMINAL_STATUSES, type MessageStatus } from '../domain/message';
import { rulesFromLimits, type WindowRule } from '../domain/rate-limit';
import type { RetryPolicy } from '../domain/retry';
import { formatReply } from '../domain/smtp-reply';
import type { CaseRepository } from '../store/cases';
import type { EventRepository } from '../store/events';
import type { MessageDoc, MessageRepository } from '../store/messages';
import type { SuppressionRepository } from '../store/suppressions';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import { Context, heartbeat } from '@temporalio/activity';
import type { PermitRepository } from '../store/permits';
import { wakeLimiter } from '../temporal/handoffs/rate-limiter';
import { BusyError } from '../errors';
import { tellCaseOfDelivery } from './cases';
import { applyConsequences, waitForPause } from './delivery-consequences';
import { appendAttemptEvents, appendEndingEvent } from './message-events';
import { noteMessageFailed, noteSendAttempt } from './tenant-health';
import type { OAuthAccess } from './oauth-access';
import type { SendGate } from './send-gate';
import { copyToSentIfWanted } from './sent-copy';
import { outcomeFromError, outcomeFromResult, type PoolLease, type SmtpPools } from './smtp-transport';

/**
 * How long a local attempt waits for its tenant's next free slot: long enough for a healthy server's
 * transaction to end (a burst of one tenant then stays on the local path), short enough that a stalled
 * tenant's local attempts soon give their workflow-task slots back (they go to regular activities).
 */
const LOCAL_GATE_WAIT_MS = 2_000;

export interface MessageActivityDeps {
  tenants: TenantRepository;
  messages: MessageRepository;
  suppressions: SuppressionRepository;
  pools: SmtpPools;
  /** This process's cap on SMTP attempts per tenant and as local activities (src/activities/send-gate.ts). */
  gate: SendGate;
  temporal: Client;
  taskQueue: string;
  /** XOAUTH2 tokens (absent: OAuth2 tenants wait for credentials). */
  oauth?: OAuthAccess;
  /** The outbox for message.sent / deferred / failed / bounced (src/activities/message-events.ts). */
  events: EventRepository;
  /** The message's case is told of the outcome by the attempt that ends it (tellCaseOfDelivery). */
  cases: CaseRepository;
  /** The rate limiters' queues and grant logs. */
  permits: PermitRepository;
}

export interface PrepareResult {
  /** Set when nothing is left to do (cancelled meanwhile, every recipient suppressed). */
  done?: { status: MessageStatus; reason: string };
  pendingRecipients: number;
  rules: WindowRule[];
}

export interface AttemptInput {
  tenantId: string;
  id: string;
  attempt: number;
  /** Limiter grant time; the permit is only good for `permitMarginMs` after it. */
  permitGrantedAt: number | null;
  permitMarginMs: number;
  policy: RetryPolicy;
  elapsedMs: number;
  failuresSoFar: number;
}

export type AttemptResult = (
  | { next: NextStep; status: MessageStatus; settingsVersion: number; lastReply: string }
  | { next: { kind: 'permit_expired' }; status: MessageStatus; settingsVersion: number; lastReply: string }
  /**
   * A local attempt found the tenant (or the process's local attempts) at its cap and did nothing:
   * the workflow makes this attempt as a regular activity instead (src/activities/send-gate.ts).
   */
  | { next: { kind: 'tenant_busy' }; status: MessageStatus; settingsVersion: number; lastReply: string }
) & {
  /** The attempt ended the message and told its case already (the workflow skips notifyCaseOfDelivery). */
  caseNotified?: true;
};

export interface StartResult {
  prep: PrepareResult;
  /** The first attempt's result, when it could be made at once (no rate limits to wait for). */
  first?: AttemptResult;
}

export function createMessageActivities(deps: MessageActivityDeps) {
  /** A regular attempt turned away by the gate, retried at its place in the tenant's line. */
  const busy = (tenantId: string, maxConnections: number, activityAttempt: number) =>
    new BusyError(
      `tenant ${tenantId} already has its SMTP attempts in flight on this worker`,
      deps.gate.retryDelayMs(tenantId, maxConnections, activityAttempt, Math.random),
    );

  /** Drops suppressed recipients (recorded), reads the tenant's limits. */
  async function prepare(doc: MessageDoc, tenant: TenantDoc): Promise<{ prep: PrepareResult; doc: MessageDoc }> {
    if (TERMINAL_STATUSES.has(doc.status)) {
      return { prep: { done: { status: doc.status, reason: doc.reason ?? doc.status }, pendingRecipients: 0, rules: [] }, doc };
    }
    const pending = doc.recipients.filter((r) => r.status === 'pending');
    const suppressed = await deps.suppressions.suppressedAmong(
      doc.tenantId,
      pending.map((r) => r.address),
    );
    let recipients = doc.recipients;
    if (suppressed.size > 0) {
      recipients = doc.recipients.map((r) => {
        const s = suppressed.get(r.address.toLowerCase());
        return s && r.status === 'pending'
          ? { ...r, status: 'suppressed' as const, reply: `suppressed (${s.source}: ${s.reason})`, updatedAt: new Date() }
          : r;
      });
      await deps.messages.suppressRecipients(doc._id, recipients);
    }
    const left = recipients.filter((r) => r.status === 'pending').length;
    if (left === 0) {
      const reason = `every recipient is on the tenant's suppression list (${[...suppressed.keys()].join(', ')})`;
      await deps.messages.finish(doc._id, 'suppressed', reason);
      await appendEndingEvent(deps.events, doc, 'suppressed', reason, null);
      return { prep: { done: { status: 'suppressed', reason }, pendingRecipients: 0, rules: [] }, doc };
    }
    return { prep: { pendingRecipients: left, rules: rulesFromLimits(tenant.settings.limits) }, doc: { ...doc, recipients } };
  }

  /**
   * One SMTP transaction for the pending recipients, recorded in the store before returning.
   * Replays the recorded result if Temporal retries this activity after the attempt was stored.
   */
  async function attempt(existing: MessageDoc, tenant: TenantDoc, input: AttemptInput): Promise<AttemptResult> {
    const { tenantId, id } = input;
    const recorded = existing.attempts.find((a) => a.n === input.attempt);
    if (recorded) {
      // Re-announce (same ids): the run that recorded it may have died before announcing it.
      await appendAttemptEvents(deps.events, existing, recorded, existing.status, existing.recipients, existing.reason ?? null);
      await copyToSentIfWanted(deps, existing, tenant, existing.status);
      return replayed(existing.status, existing.reason, recorded.outcome, existing.lastReply ?? '', input.policy);
    }
    if (TERMINAL_STATUSES.has(existing.status)) {
      return {
        next: { kind: 'done', status: existing.status, reason: existing.reason ?? existing.status },
        status: existing.status,
        settingsVersion: 0,
        lastReply: existing.lastReply ?? '',
      };
    }
    if (input.permitGrantedAt !== null && Date.now() - input.permitGrantedAt > input.permitMarginMs) {
      await deps.messages.setStatus(id, 'waiting_rate_limit');
      // The slot goes back to the tenant and the request back to its place in line (the workflow
      // asks again, and finds it there); the limiter may hand the slot on before its next timer.
      if (await deps.permits.requeueExpired(tenantId, existing.workflowId, input.permitGrantedAt, Date.now())) {
        await wakeLimiter(deps.temporal, deps.taskQueue, tenantId, input.permitMarginMs, 'release');
      }
      return { next: { kind: 'permit_expired' }, status: 'waiting_rate_limit', settingsVersion: 0, lastReply: existing.lastReply ?? '' };
    }
    // A paused tenant (a quota refusal) takes no slot of the gate and opens no transaction.
    const pausedUntil = await deps.permits.sendingPausedUntilRecent(tenantId, Date.now());
    if (pausedUntil > 0) return waitForPause(deps, existing, pausedUntil, input.policy);
    const isLocal = Context.current().info.isLocal;
    const release = await deps.gate.enter(
      tenantId,
      tenant.settings.limits.maxConnections,
      () => {
        if (!isLocal) heartbeat();
      },
      isLocal,
      LOCAL_GATE_WAIT_MS,
    );
    if (!release) {
      if (isLocal) {
        return {
          next: { kind: 'tenant_busy' },
          status: existing.status,
          settingsVersion: tenant.settingsVersion,
          lastReply: existing.lastReply ?? '',
        };
      }
      // Waiting longer here would hold an activity slot for as long as the tenant's server stalls.
      throw busy(tenantId, tenant.settings.limits.maxConnections, Context.current().info.attempt);
    }
    try {
      return await claimedAttempt(existing, tenant, input, isLocal, release);
    } finally {
      release();
    }
  }

  /**
   * The rest of `attempt`, inside the tenant's gate until its SMTP transaction ends: the gate bounds
   * transactions (the tenant's connections), so recording the outcome (several store writes) happens
   * after `release`, while the tenant's next attempt already uses the connection.
   */
  async function claimedAttempt(
    existing: MessageDoc,
    tenant: TenantDoc,
    input: AttemptInput,
    isLocal: boolean,
    release: () => void,
  ): Promise<AttemptResult> {
    const { tenantId, id } = input;
    if (!(await deps.messages.claimForSending(id, input.attempt))) {
      // Cancelled (or finished) before this attempt could start its SMTP transaction.
      const now = await deps.messages.get(tenantId, id);
      const lock = await deps.messages.lockOf(id);
      if (TERMINAL_STATUSES.has(now.status) || lock?.state === 'cancelled') {
        const status = TERMINAL_STATUSES.has(now.status) ? now.status : 'cancelled';
        return { next: { kind: 'done', status, reason: now.reason ?? status }, status, settingsVersion: 0, lastReply: now.lastReply ?? '' };
      }
      // Another worker holds this message (a lock we cannot explain): never guess an outcome; the
      // local activity's retry looks again.
      throw new Error(
        `message ${id} is locked (${lock?.state ?? 'no lock'}, attempt ${lock?.attempt ?? '-'}) by another attempt than ${input.attempt}`,
      );
    }
    const mime = await deps.messages.loadBody(existing);
    const pending = existing.recipients.filter((r) => r.status === 'pending').map((r) => r.address);
    const started = Date.now();
    let outcome;
    let lease: PoolLease | null = null;
    // As a regular activity, heartbeats let Temporal notice a dead worker in seconds; as a local
    // activity (the send workflow's first choice) the workflow-task timeout does that instead.
    const beat = setInterval(() => {
      if (!isLocal) heartbeat();
    }, 5_000);
    try {
      // Throws SealedCredentialsError (→ wait for credentials) before any connection when the stored
      // secrets do not open for these settings: they were given for another endpoint.
      const auth = deps.tenants.openAuth(tenant);
      const binding = deps.tenants.credentialBinding(tenant);
      const leased = await deps.pools.lease(tenantId, tenant.settingsVersion, tenant.settings, auth, binding);
      lease = leased;
      // The tenant's Return-Path, when set, sends notices to their own mailbox (docs/sending.md "Envelope sender").
      const envelopeFrom = tenant.settings.returnPath ?? existing.from;
      const send = () => leased.transporter.sendMail({ envelope: { from: envelopeFrom, to: pending }, raw: mime });
      const info = auth.type === 'oauth2' && deps.oauth ? await deps.oauth.sendWithRefresh(binding, send) : await send();
      outcome = outcomeFromResult(info);
    } catch (err) {
      outcome = outcomeFromError(err);
      // Only a broken connection (no server reply) warrants new connections; a 4xx/5xx came over a healthy one.
      if (outcome.reply.code === undefined) deps.pools.evict(tenantId);
    } finally {
      clearInterval(beat);
      lease?.release();
      release();
    }
    const decision = decideAfterAttempt(existing.recipients, pending, outcome, {
      policy: input.policy,
      elapsedMs: input.elapsedMs,
      failuresSoFar: input.failuresSoFar,
      random: Math.random,
    });
    await applyConsequences(deps, existing, input.attempt, decision);
    const lastReply = formatReply(outcome.reply);
    const now = new Date();
    await deps.messages.recordAttempt(
      id,
      {
        n: input.attempt,
        at: new Date(started),
        durationMs: Date.now() - started,
        outcome: outcome.cls,
        reply: lastReply,
        recipients: pending,
      },
      decision.recipients.map((r) => ({ ...r, updatedAt: now })),
      decision.status,
      { lastReply, reason: decision.next.reason },
    );
    // The attempt's events and its case's `case.updated` go out in one append. A crash before it
    // loses none: the attempt is recorded, so the retry replays it and announces them again.
    const events = deps.events.batch();
    await appendAttemptEvents(
      events,
      existing,
      { n: input.attempt, outcome: outcome.cls, reply: lastReply },
      decision.status,
      decision.recipients,
      decision.next.reason ?? null,
    );
    await noteSendAttempt(deps, tenant, { cls: outcome.cls, reply: lastReply, status: decision.status, bounced: decision.bounced.length });
    await copyToSentIfWanted(deps, existing, tenant, decision.status);
    if (decision.next.kind === 'done') {
      // The document is in hand: telling the case here saves the workflow a local activity and a read.
      await tellCaseOfDelivery(
        { ...deps, events },
        { ...existing, recipients: decision.recipients, completedAt: now },
        decision.next.status,
        decision.next.reason,
      );
      await events.flush();
      return { next: decision.next, status: decision.status, settingsVersion: tenant.settingsVersion, lastReply, caseNotified: true };
    }
    await events.flush();
    return { next: decision.next, status: decision.status, settingsVersion: tenant.settingsVersion, lastReply };
  }

  return {
    /**
     * Prepare and, when the tenant has no rate limits, make the first attempt in the same activity:
     * one activity instead of two on the common path halves Temporal's work per message.
     */
    async startDelivery(input: AttemptInput): Promise<StartResult> {
      // The first attempt may use a tenant read up to TENANT_CACHE_MS ago; every later attempt
      // (after a refusal, a credentials wait, a settings change) reads it afresh in attemptDelivery.
      const [doc, tenant] = await Promise.all([deps.messages.get(input.tenantId, input.id), deps.tenants.getRecent(input.tenantId)]);
      const { prep, doc: prepared } = await prepare(doc, tenant);
      if (prep.done || prep.rules.length > 0) return { prep };
      return { prep, first: await attempt(prepared, tenant, input) };
    },

    async attemptDelivery(input: AttemptInput): Promise<AttemptResult> {
      const info = input.permitGrantedAt === null ? Context.current().info : null;
      if (info && !info.isLocal) {
        // A regular attempt the gate would turn away at once is turned away before it reads
        // anything: in a one-tenant burst most of them are, and each read is store work per retry.
        // (One holding a rate-limit permit goes on, so an expired permit is handed back promptly.)
        const { settings } = await deps.tenants.getRecent(input.tenantId);
        if (deps.gate.wouldRefuse(input.tenantId, settings.limits.maxConnections))
          throw busy(input.tenantId, settings.limits.maxConnections, info.attempt);
      }
      const [doc, tenant] = await Promise.all([deps.messages.get(input.tenantId, input.id), deps.tenants.get(input.tenantId)]);
      return attempt(doc, tenant, input);
    },

    async setMessageStatus(id: string, status: MessageStatus): Promise<void> {
      await deps.messages.setStatus(id, status);
    },

    async finishMessage(id: string, status: MessageStatus, reason: string): Promise<void> {
      await deps.messages.finish(id, status, reason);
      if (status === 'failed') {
        const doc = await deps.messages.findAny(id);
        // Only what the store recorded is announced: a cancel that won the lock stays `cancelled`.
        if (doc?.status === 'failed') await appendEndingEvent(deps.events, doc, status, reason, doc.lastReply ?? null);
        if (doc?.status === 'failed') await noteMessageFailed(deps, doc.tenantId);
      }
    },

    async tenantSettingsVersion(tenantId: string): Promise<number> {
      return (await deps.tenants.get(tenantId)).settingsVersion;
    },

    /**
     * Queues a permit request in the store (asking again keeps its place) and wakes the tenant's
     * limiter, starting it if it is not running. The limiter reads the tenant's rules itself:
     * `_rules` stays in the signature the send workflow calls (and its recorded histories hold).
     */
    async requestPermit(
      tenantId: string,
      workflowId: string,
      recipients: number,
      _rules: WindowRule[],
      marginMs: number,
      acceptedAt: number,
    ): Promise<void> {
      await deps.permits.enqueue(tenantId, { workflowId, recipients, acceptedAt }, Date.now());
      await wakeLimiter(deps.temporal, deps.taskQueue, tenantId, marginMs, 'request');
    },
  };
}

/** Rebuilds what the workflow should do from an attempt already in the store. */
function replayed(status: MessageStatus, reason: string | null, outcome: string, lastReply: string, policy: RetryPolicy): AttemptResult {
  if (TERMINAL_STATUSES.has(status))
    return { next: { kind: 'done', status, reason: reason ?? status }, status, settingsVersion: 0, lastReply };
  if (status === 'waiting_credentials') {
    return {
      next: { kind: 'wait_credentials', cls: outcome === 'tls' ? 'tls' : 'auth', reason: reason ?? lastReply },
      status,
      settingsVersion: 0,
      lastReply,
    };
  }
  return {
    next: { kind: 'retry', delayMs: policy.initialMs, cls: 'transient', reason: reason ?? lastReply },
    status: 'retrying',
    settingsVersion: 0,
    lastReply,
  };
}
