import type { Client } from '@temporalio/client';
import { TERMINAL_STATUSES } from '../domain/message';
import { grantLogCutoff, grantRoom, planGrants, rulesFromLimits, type Grant, type WindowRule } from '../domain/rate-limit';
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
  /** No request can reach the give-up maximum before this (0: look now); from the previous tick. */
  giveUpCheckAt: number;
}

export interface LimiterTickResult {
  granted: number;
  refused: number;
  /** Requests left waiting (null: not counted this turn). */
  queued: number | null;
  /** When the next grant or give-up can happen (null: nothing waits). */
  nextAt: number | null;
  giveUpCheckAt: number;
}

/** Requests read beyond the room left: the first that does not fit, and some a cut-short tick granted. */
const HEAD_SLACK = 10;
/** Grants per tick: bounds one tick's work (and its parallel signals); the workflow ticks again at once. */
const MAX_GRANTS_PER_TICK = 500;
/** Give-ups per tick, likewise. */
const MAX_REFUSALS_PER_TICK = 100;
/** Signals in flight at once. */
const SIGNAL_CONCURRENCY = 100;
/** The queue is counted (a scan on FerretDB) only before sleeping longer than this. */
const COUNT_BEFORE_SLEEP_MS = 60_000;

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
        if (err instanceof NotFoundError) return { granted: 0, refused: 0, queued: 0, nextAt: null, giveUpCheckAt: 0 };
        throw err;
      }
      // A quota or rate refusal paused the tenant (recorded by the send attempt that got it): no grants before then.
      const pausedUntil = Math.max(input.pausedUntil, await deps.permits.sendingPausedUntil(tenantId, now));
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

      // 1. The queue's head, as far as it can go now. Each read asks for no more than can be granted
      // (plus the first that cannot, for its wait, and a few a tick cut short granted already).
      const fresh: Array<Omit<GrantDoc, '_id'>> = [];
      let nextAt: number | null = null;
      let readAll = false;
      let unanswered = 0;
      let after: string | null = null;
      for (;;) {
        const room = Math.min(grantRoom(log, rules, now, marginMs), MAX_GRANTS_PER_TICK - fresh.length);
        const want = Math.min(room, MAX_GRANTS_PER_TICK) + HEAD_SLACK;
        const heads = await deps.permits.head(tenantId, after, want);
        const candidates: PermitRequestDoc[] = [];
        for (const r of heads) {
          const earlier = byToken.get(r.token);
          if (earlier) answer(r, { grantedAt: earlier.at });
          else candidates.push(r);
        }
        const plan = planGrants(
          log,
          rules,
          candidates.map((r) => ({ id: r._id, recipients: r.recipients })),
          { now, marginMs, pausedUntil, maxGrants: MAX_GRANTS_PER_TICK - fresh.length },
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
        unanswered += candidates.length - plan.granted.length;
        if (heads.length < want) readAll = true;
        if (plan.blockedUntil !== null) {
          nextAt = plan.blockedUntil;
          break;
        }
        if (readAll) break;
        after = heads.at(-1)!._id;
      }

      // 2. The give-up policy, when a request can be due: the longest waits, refused past the maximum.
      const maxWait = deps.permitMaxWaitMs;
      let refused = 0;
      let giveUpCheckAt = input.giveUpCheckAt;
      if (now >= giveUpCheckAt) {
        const longest = await deps.permits.longestWaiting(tenantId, MAX_REFUSALS_PER_TICK + HEAD_SLACK);
        // Nothing waiting now can be due before this; later requests wait from later.
        giveUpCheckAt = now + maxWait;
        let stoppedEarly = false;
        for (const r of longest) {
          if (answered.has(r._id) || byToken.has(r.token)) continue;
          if (r.waitingSince >= now - maxWait) {
            giveUpCheckAt = r.waitingSince + maxWait;
            stoppedEarly = true;
            break;
          }
          if (refused >= MAX_REFUSALS_PER_TICK) break;
          const reason = `waited ${formatDuration(now - r.waitingSince)} for a rate-limit slot, longer than the ${formatDuration(maxWait)} allowed (SEND_RATE_LIMIT_MAX_WAIT_MS)`;
          await giveUp(tenantId, r, reason);
          answer(r, { grantedAt: now, refused: reason });
          refused++;
          unanswered--;
        }
        // More may be due than one turn refuses: look again at once.
        if (!stoppedEarly && longest.length === MAX_REFUSALS_PER_TICK + HEAD_SLACK) giveUpCheckAt = now;
      }

      // 3. The store first: a sender told of a grant the log does not hold could break the limit.
      await deps.permits.recordGrants(fresh);
      await tell(answers);
      await deps.permits.removeRequests([...answered]);

      // A count reads the whole queue: only when exact for free (all of it was read) or before a long sleep.
      let queued: number | null = readAll ? Math.max(0, unanswered) : null;
      if (queued === null && (nextAt === null || nextAt - now > COUNT_BEFORE_SLEEP_MS)) queued = await deps.permits.countWaiting(tenantId);
      if (queued === 0) return { granted: fresh.length, refused, queued, nextAt: null, giveUpCheckAt };
      return { granted: fresh.length, refused, queued, nextAt: Math.min(nextAt ?? now, giveUpCheckAt), giveUpCheckAt };
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
