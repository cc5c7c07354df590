import type { Client } from '@temporalio/client';
import { TERMINAL_STATUSES } from '../domain/message';
import { grantLogCutoff, planGrants, rulesFromLimits, type Grant, type WindowRule } from '../domain/rate-limit';
import { formatDuration } from '../domain/retry';
import { NotFoundError } from '../errors';
import type { EventRepository } from '../store/events';
import type { MessageRepository } from '../store/messages';
import type { GrantDoc, PermitRepository, PermitRequestDoc } from '../store/permits';
import type { TenantRepository } from '../store/tenants';
import type { PermitRequest } from '../temporal/handoffs/rate-limiter';
import { messageIdOfSendWorkflow, signalPermitGranted, type PermitGrant } from '../temporal/handoffs/send-message';
import { appendEndingEvent } from './message-events';

export interface LimiterActivityDeps {
  permits: PermitRepository;
  tenants: TenantRepository;
  messages: MessageRepository;
  events: EventRepository;
  temporal: Client;
  /** SEND_RATE_LIMIT_MAX_WAIT_MS: a request waiting longer is refused and its message fails. */
  permitMaxWaitMs: number;
}

export interface LimiterTickInput {
  tenantId: string;
  marginMs: number;
  /** No grants before this (a throttling reply from the tenant's server). */
  pausedUntil: number;
}

export interface LimiterTickResult {
  granted: number;
  refused: number;
  /** Requests left waiting. */
  queued: number;
  /** When the next grant or give-up can happen (null: nothing waits). */
  nextAt: number | null;
}

/** Requests read per store round trip while granting. */
const HEAD_BATCH = 200;
/** Grants per tick: bounds one tick's work (and its parallel signals); the workflow ticks again at once. */
const MAX_GRANTS_PER_TICK = 500;
/** Give-ups per tick, likewise. */
const MAX_REFUSALS_PER_TICK = 100;
/** Signals in flight at once. */
const SIGNAL_CONCURRENCY = 100;

export function createLimiterActivities(deps: LimiterActivityDeps) {
  /** Every grant signal at once (bounded concurrency); a sender that is gone misses nothing. */
  async function tell(answers: ReadonlyArray<{ workflowId: string; grant: PermitGrant }>): Promise<void> {
    for (let i = 0; i < answers.length; i += SIGNAL_CONCURRENCY) {
      await Promise.all(
        answers
          .slice(i, i + SIGNAL_CONCURRENCY)
          .map((a) => signalPermitGranted(deps.temporal, a.workflowId, a.grant).catch(() => undefined)),
      );
    }
  }

  /** The message a send workflow id names, if it is this tenant's. */
  async function messageOf(tenantId: string, workflowId: string) {
    const id = messageIdOfSendWorkflow(tenantId, workflowId);
    if (id === null) return null;
    const doc = await deps.messages.findAny(id);
    return doc && doc.tenantId === tenantId && doc.workflowId === workflowId ? doc : null;
  }

  /** Ends a message that waited too long: recorded `failed` and announced, as finishMessage does. */
  async function giveUp(tenantId: string, r: PermitRequestDoc, reason: string): Promise<void> {
    const doc = await messageOf(tenantId, r.workflowId);
    if (!doc || TERMINAL_STATUSES.has(doc.status)) return;
    await deps.messages.finish(doc._id, 'failed', reason);
    const after = await deps.messages.findAny(doc._id);
    // A cancel that won the message's lock stays `cancelled`, unannounced here.
    if (after?.status === 'failed') await appendEndingEvent(deps.events, after, 'failed', reason, after.lastReply ?? null);
  }

  return {
    /**
     * One turn of a tenant's limiter: prunes and reads the grant log (bounded by the rules: what
     * the windows can see), gives up on requests that waited too long, grants the queue head while
     * it fits (store first, then every granted sender signalled in parallel), and says when the
     * next grant or give-up can happen. Safe to run again after a crash at any point.
     */
    async limiterTick(input: LimiterTickInput): Promise<LimiterTickResult> {
      const { tenantId, marginMs } = input;
      const now = Date.now();
      let rules: WindowRule[];
      try {
        rules = rulesFromLimits((await deps.tenants.get(tenantId)).settings.limits);
      } catch (err) {
        // A deleted tenant's requests go with its data (src/store/tenant-purge.ts); nothing to grant.
        if (err instanceof NotFoundError) return { granted: 0, refused: 0, queued: 0, nextAt: null };
        throw err;
      }
      const cutoff = grantLogCutoff(rules, now, marginMs);
      await deps.permits.pruneGrants(tenantId, cutoff);
      const logDocs = await deps.permits.liveGrants(tenantId, cutoff);
      const byToken = new Map(logDocs.map((g) => [g.token, g]));
      const log: Grant[] = logDocs.map((g) => ({ at: g.at, recipients: g.recipients }));

      const answers: Array<{ workflowId: string; grant: PermitGrant }> = [];
      const answered = new Set<string>();
      const answer = (r: PermitRequestDoc, grant: PermitGrant) => {
        answers.push({ workflowId: r.workflowId, grant });
        answered.add(r._id);
      };

      let refused = 0;
      const maxWait = deps.permitMaxWaitMs;
      for (const r of await deps.permits.waitingSince(tenantId, now - maxWait, MAX_REFUSALS_PER_TICK)) {
        if (byToken.has(r.token)) continue; // granted by a tick cut short: told below
        const reason = `waited ${formatDuration(now - r.waitingSince)} for a rate-limit slot, longer than the ${formatDuration(maxWait)} allowed (SEND_RATE_LIMIT_MAX_WAIT_MS)`;
        await giveUp(tenantId, r, reason);
        answer(r, { grantedAt: now, refused: reason });
        refused++;
      }

      const fresh: Array<Omit<GrantDoc, '_id'>> = [];
      let nextAt: number | null = null;
      let after: string | null = null;
      for (;;) {
        const heads = await deps.permits.head(tenantId, after, HEAD_BATCH);
        const candidates: PermitRequestDoc[] = [];
        for (const r of heads) {
          if (answered.has(r._id)) continue;
          const earlier = byToken.get(r.token);
          if (earlier) answer(r, { grantedAt: earlier.at });
          else candidates.push(r);
        }
        const plan = planGrants(
          log,
          rules,
          candidates.map((r) => ({ id: r._id, recipients: r.recipients })),
          { now, marginMs, pausedUntil: input.pausedUntil, maxGrants: MAX_GRANTS_PER_TICK - fresh.length },
        );
        for (let i = 0; i < plan.granted.length; i++) {
          const r = candidates[i]!;
          log.push({ at: now, recipients: r.recipients });
          fresh.push({
            tenantId,
            workflowId: r.workflowId,
            at: now,
            recipients: r.recipients,
            token: r.token,
            acceptedAt: r.acceptedAt,
            waitingSince: r.waitingSince,
          });
          answer(r, { grantedAt: now });
        }
        if (plan.blockedUntil !== null) {
          nextAt = plan.blockedUntil;
          break;
        }
        if (heads.length < HEAD_BATCH) break;
        after = heads.at(-1)!._id;
      }

      // The store first: a sender told of a grant the log does not hold could break the limit.
      await deps.permits.recordGrants(fresh);
      await tell(answers);
      await deps.permits.removeRequests([...answered]);

      const queued = await deps.permits.countWaiting(tenantId);
      if (queued === 0) return { granted: fresh.length, refused, queued, nextAt: null };
      const oldest = await deps.permits.oldestWait(tenantId);
      const giveUpAt = oldest === null ? Infinity : oldest + maxWait;
      // Requests that arrived during this tick, past the grants planned: look again at once.
      return { granted: fresh.length, refused, queued, nextAt: Math.min(nextAt ?? now, giveUpAt) };
    },

    /**
     * Requests signalled the old way (`requestPermit`, before the queue was in the store) and what a
     * run from before carried: into the store, where the tick finds them.
     */
    async storeLegacyPermits(tenantId: string, requests: PermitRequest[], grants: Grant[]): Promise<void> {
      const now = Date.now();
      for (const r of requests) {
        await deps.permits.enqueue(tenantId, { workflowId: r.workflowId, recipients: r.recipients, acceptedAt: r.acceptedAt }, now);
      }
      // Their senders are unknown; they count against the windows until they age out.
      await deps.permits.recordGrants(
        grants.map((g, i) => ({
          tenantId,
          // Not a workflow: only unique within the grant's millisecond.
          workflowId: ['carried', i].join('-'),
          at: g.at,
          recipients: g.recipients,
          token: `carried-${g.at}-${i}`,
          acceptedAt: g.at,
          waitingSince: g.at,
        })),
      );
    },
  };
}
