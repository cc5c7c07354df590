import type { Client } from '@temporalio/client';
import type { MessageCreateInput } from '../domain/message';
import type { RetryPolicy } from '../domain/retry';
import { ConflictError, DependencyUnavailableError } from '../errors';
import { registerOutbound, replyToFor } from '../cases/outbound';
import type { MessageDoc } from '../store/messages';
import type { TenantDoc } from '../store/tenants';
import {
  sendWorkflowId,
  signalCancel as signalCancelHandoff,
  startSendMessage,
  type SendMessageInput,
} from '../temporal/handoffs/send-message';
import { composeMessage, newMessageId, type ComposeDeps } from './compose';

/**
 * Accepting and cancelling outbound mail (POST and DELETE /v1/messages): the routes validate the
 * request and resolve the tenant, this module does the rest, as src/inbound/ingest.ts does for
 * inbound mail.
 */
export interface OutboundDeps extends ComposeDeps {
  temporal: Client;
  taskQueue: string;
  policy: RetryPolicy;
  permitMarginMs: number;
  /** A cancel signal that could not be delivered (not an error for the caller: see signalCancel). */
  onCancelSignalError: (workflowId: string, err: Error) => void;
}

export interface AcceptResult {
  doc: MessageDoc;
  /** The idempotency key was claimed before: `doc` is the first request's message. */
  repeated: boolean;
}

/**
 * Accepts a validated message for a tenant: claims its idempotency key, composes and stores it,
 * joins it to its case and starts its send workflow. A repeated key returns the first message
 * (and finishes what its request may not have: indexing it, starting the workflow); it is never
 * sent twice.
 */
export async function acceptMessage(deps: OutboundDeps, tenant: TenantDoc, body: MessageCreateInput): Promise<AcceptResult> {
  if (tenant.settings.status === 'suspended') throw new ConflictError(`tenant ${tenant._id} is suspended`);

  let id = newMessageId();
  if (body.idempotencyKey) {
    const claim = await deps.messages.claimIdempotencyKey(tenant._id, body.idempotencyKey, id);
    if (!claim.won) {
      const existing = await deps.messages.find(tenant._id, claim.messageId);
      if (existing) {
        // The first request may have stored the message and died before indexing it or starting the workflow.
        await registerOutbound(
          deps,
          tenant,
          existing,
          !body.replyTo && existing.caseId !== null && replyToFor(tenant, existing.caseId) !== null,
        );
        await startSendWorkflow(deps, existing).catch((err: unknown) => {
          throw new DependencyUnavailableError('temporal', `cannot start delivery: ${(err as Error).message}`);
        });
        return { doc: existing, repeated: true };
      }
      id = claim.messageId;
    }
  }

  const composed = await composeMessage(deps, tenant, body, id);
  // The body is stored before the document: a message document never points at a missing body.
  const bodyRef = await deps.messages.storeBody(id, tenant._id, composed.mime);
  const now = new Date();
  const stored = await deps.messages.insert({
    _id: id,
    tenantId: tenant._id,
    messageId: composed.messageId,
    status: composed.sendAt && composed.sendAt.getTime() > Date.now() ? 'scheduled' : 'queued',
    from: composed.from,
    subject: body.subject,
    caseId: composed.caseId,
    inReplyTo: composed.inReplyTo,
    references: composed.references,
    sendAt: composed.sendAt,
    idempotencyKey: body.idempotencyKey ?? null,
    recipients: composed.recipients.map((r) => ({ ...r, status: 'pending' })),
    attempts: [],
    reason: null,
    lastReply: null,
    size: composed.mime.length,
    body: bodyRef,
    workflowId: sendWorkflowId(tenant._id, id),
    createdAt: now,
    updatedAt: now,
    completedAt: null,
    ...(composed.tracking ? { tracking: composed.tracking } : {}),
  });
  await registerOutbound(deps, tenant, stored, composed.usedReplyToken);
  try {
    await startSendWorkflow(deps, stored);
  } catch (err) {
    // Not accepted: say so in the record too, so nothing claims to be queued without a workflow.
    // A retry with the same idempotency key starts it.
    await deps.messages.markNotAccepted(
      stored._id,
      'not yet accepted: the workflow could not be started (Temporal unavailable); retry the request',
    );
    throw new DependencyUnavailableError('temporal', `cannot start delivery: ${(err as Error).message}`);
  }
  return { doc: stored, repeated: false };
}

/** Cancels a message of `tenantId` (409 inside an SMTP transaction or once finished) and wakes its workflow. */
export async function cancelMessage(
  deps: Pick<OutboundDeps, 'messages' | 'temporal' | 'onCancelSignalError'>,
  tenantId: string,
  id: string,
): Promise<MessageDoc> {
  const doc = await deps.messages.cancel(tenantId, id);
  await signalCancel(deps, doc);
  return doc;
}

/** The one place a send workflow is started. A retried request finds it started: already durable. */
export async function startSendWorkflow(
  deps: Pick<OutboundDeps, 'temporal' | 'taskQueue' | 'policy' | 'permitMarginMs'>,
  doc: MessageDoc,
): Promise<void> {
  const input: SendMessageInput = {
    tenantId: doc.tenantId,
    id: doc._id,
    ...(doc.sendAt ? { sendAt: doc.sendAt.getTime() } : {}),
    policy: deps.policy,
    permitMarginMs: deps.permitMarginMs,
    acceptedAt: doc.createdAt.getTime(),
  };
  // False when it runs (or ran) already: a retried request is durable already.
  await startSendMessage(deps.temporal, deps.taskQueue, { workflowId: doc.workflowId, input, status: doc.status, caseId: doc.caseId });
}

/**
 * Wakes the send workflow so it ends now instead of at its next timer. A failed signal is logged,
 * not thrown: the store already says cancelled (the lock decided it), and the workflow re-checks
 * the store before every attempt, so the message is never sent; it only ends later.
 */
export async function signalCancel(deps: Pick<OutboundDeps, 'temporal' | 'onCancelSignalError'>, doc: MessageDoc): Promise<void> {
  await signalCancelHandoff(deps.temporal, doc.workflowId, doc.tenantId, doc._id).catch((err: unknown) =>
    deps.onCancelSignalError(doc.workflowId, err as Error),
  );
}
