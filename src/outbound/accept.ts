import type { Client } from '@temporalio/client';
import type { MessageCreateInput } from '../domain/message';
import type { RetryPolicy } from '../domain/retry';
import { CarteroError, ConflictError, DependencyUnavailableError } from '../errors';
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
import { claimKey, requestHash } from './idempotency';

/**
 * Accepting and cancelling outbound mail (POST and DELETE /v1/messages): the routes validate the
 * request and resolve the tenant, this module does the rest, as src/inbound/ingest.ts does for
 * inbound mail.
 */
export interface OutboundDeps extends ComposeDeps {
  temporal: Client;
  /** Where send workflows run (TEMPORAL_SEND_TASK_QUEUE). */
  sendTaskQueue: string;
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
 * joins it to its case and starts its send workflow. A repeated key with the same request returns
 * the first message (and finishes what its request may not have: indexing it, starting the
 * workflow); it is never sent twice. The same key with another request is refused (422), and
 * concurrent requests with one key produce one message (src/outbound/idempotency.ts).
 */
export async function acceptMessage(deps: OutboundDeps, tenant: TenantDoc, body: MessageCreateInput): Promise<AcceptResult> {
  if (tenant.settings.status === 'suspended') throw new ConflictError(`tenant ${tenant._id} is suspended`);

  let id = newMessageId();
  let owner: string | null = null;
  if (body.idempotencyKey) {
    const outcome = await claimKey(deps.messages, tenant._id, body.idempotencyKey, requestHash(tenant._id, body), id);
    if (!outcome.own) {
      const existing = outcome.existing;
      // The first request may have stored the message and died before indexing it or starting the workflow.
      await registerOutbound(
        deps,
        tenant,
        existing,
        !body.replyTo && existing.caseId !== null && replyToFor(tenant, existing.caseId) !== null,
      );
      await startSendWorkflow(deps, existing).catch((err: unknown) => {
        throw new DependencyUnavailableError('temporal', 'cannot start delivery now; retry with the same idempotencyKey', err);
      });
      return { doc: existing, repeated: true };
    }
    id = outcome.id;
    owner = outcome.owner;
  }

  let stored: { doc: MessageDoc; usedReplyToken: boolean };
  try {
    stored = await composeAndStore(deps, tenant, body, id);
  } catch (err) {
    // Refused as sent (a 4xx): nothing was stored, so the key is free again and a corrected retry is
    // neither refused nor made to wait. A store or Temporal failure may have stored the message
    // anyway: the claim stays, and a retry after its lease finds or finishes it under the same id.
    if (body.idempotencyKey && owner && err instanceof CarteroError && !(err instanceof DependencyUnavailableError))
      await deps.messages.releaseIdempotencyKey(tenant._id, body.idempotencyKey, owner).catch(() => undefined);
    throw err;
  }
  await registerOutbound(deps, tenant, stored.doc, stored.usedReplyToken);
  try {
    await startSendWorkflow(deps, stored.doc);
  } catch (err) {
    // Not accepted: say so in the record too, so nothing claims to be queued without a workflow.
    // A retry with the same idempotency key starts it.
    await deps.messages.markNotAccepted(
      stored.doc._id,
      'not yet accepted: the workflow could not be started (Temporal unavailable); retry the request',
    );
    throw new DependencyUnavailableError('temporal', 'cannot start delivery now; retry with the same idempotencyKey', err);
  }
  return { doc: stored.doc, repeated: false };
}

async function composeAndStore(
  deps: OutboundDeps,
  tenant: TenantDoc,
  body: MessageCreateInput,
  id: string,
): Promise<{ doc: MessageDoc; usedReplyToken: boolean }> {
  const composed = await composeMessage(deps, tenant, body, id);
  // The body is stored before the document: a message document never points at a missing body.
  const bodyRef = await deps.messages.storeBody(id, tenant._id, composed.mime);
  const now = new Date();
  const doc = await deps.messages.insert({
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
    ...(composed.newCase ? { newCase: true as const } : {}),
  });
  return { doc, usedReplyToken: composed.usedReplyToken };
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
  deps: Pick<OutboundDeps, 'temporal' | 'sendTaskQueue' | 'policy' | 'permitMarginMs'>,
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
  await startSendMessage(deps.temporal, deps.sendTaskQueue, { workflowId: doc.workflowId, input, status: doc.status, caseId: doc.caseId });
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
