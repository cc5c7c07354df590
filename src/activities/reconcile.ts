import { heartbeat } from '@temporalio/activity';
import type { RetryPolicy } from '../domain/retry';
import type { EventRepository } from '../store/events';
import type { MessageDoc, MessageRepository } from '../store/messages';
import type { ReconcileInput, ReconcileResult } from '../temporal/handoffs/reconciler';
import { sendRunState, startSendMessage } from '../temporal/handoffs/send-message';
import type { Client } from '@temporalio/client';
import { appendEndingEvent } from './message-events';

export interface ReconcileActivityDeps {
  messages: MessageRepository;
  events: EventRepository;
  temporal: Client;
  /** Where send workflows run (TEMPORAL_SEND_TASK_QUEUE). */
  sendTaskQueue: string;
  policy: RetryPolicy;
  permitMarginMs: number;
}

const PAGE = 200;

/**
 * The reconciler's pass (docs/operations.md, "Reconciliation"). A message is stored before its send
 * workflow is started; if the start failed (Temporal down at that moment) the API answered 503 and
 * marked it `notAcceptedAt`, and if the process died in between nothing did. Either way the message
 * would stay `queued` for ever. Each pass looks at messages still `queued`/`scheduled` and untouched
 * for `graceMs`:
 * - workflow running or completed: nothing to do;
 * - no workflow, never refused: the API answered 202 (or died first): start it now;
 * - no workflow, refused with 503 longer than `notAcceptedGraceMs` ago and not repeated since: the
 *   client was told it was not accepted, so it is not sent behind its back: `failed`, with that reason
 *   (a client that repeats the request with its idempotency key in time gets it started instead);
 * - workflow ended otherwise (terminated, timed out): `failed` with the reason; it cannot be run again.
 */
export function createReconcileActivities(deps: ReconcileActivityDeps) {
  const fail = async (doc: MessageDoc, reason: string) => {
    await deps.messages.finish(doc._id, 'failed', reason);
    const now = await deps.messages.find(doc.tenantId, doc._id);
    if (now?.status === 'failed') await appendEndingEvent(deps.events, now, 'failed', reason, now.lastReply ?? null);
  };
  return {
    async reconcileOrphans(input: ReconcileInput): Promise<ReconcileResult> {
      const now = Date.now();
      const result: ReconcileResult = { checked: 0, started: [], failed: [] };
      let after: { updatedAt: Date; _id: string } | undefined;
      for (;;) {
        const page = await deps.messages.acceptedUntouchedSince(new Date(now - input.graceMs), PAGE, after);
        for (const doc of page) {
          result.checked++;
          const run = await sendRunState(deps.temporal, doc.workflowId);
          if (run === 'running' || run === 'completed') continue;
          if (run === 'ended-otherwise') {
            await fail(doc, 'its workflow was ended (terminated or timed out) before it finished the message');
            result.failed.push(doc._id);
          } else if (doc.notAcceptedAt) {
            if (now - doc.notAcceptedAt.getTime() < input.notAcceptedGraceMs) continue;
            await fail(doc, 'never accepted: the API answered 503 (the workflow could not be started) and the request was not repeated');
            result.failed.push(doc._id);
          } else {
            await startSendMessage(deps.temporal, deps.sendTaskQueue, {
              workflowId: doc.workflowId,
              input: {
                tenantId: doc.tenantId,
                id: doc._id,
                ...(doc.sendAt ? { sendAt: doc.sendAt.getTime() } : {}),
                policy: deps.policy,
                permitMarginMs: deps.permitMarginMs,
                acceptedAt: doc.createdAt.getTime(),
              },
              status: doc.status,
              caseId: doc.caseId,
            });
            result.started.push(doc._id);
          }
        }
        heartbeat(result.checked);
        const last = page.at(-1);
        if (page.length < PAGE || !last) return result;
        after = { updatedAt: last.updatedAt, _id: last._id };
      }
    },
  };
}
