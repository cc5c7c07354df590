import { randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import type { Client } from '@temporalio/client';
import MailComposer from 'nodemailer/lib/mail-composer';
import { z } from 'zod';
import {
  domainOf,
  envelopeRecipients,
  mailboxAddress,
  MESSAGE_STATUSES,
  messageCreateSchema,
  referencesFor,
  rfcMessageId,
  type Mailbox,
  type MessageCreateInput,
} from '../../domain/message';
import type { RetryPolicy } from '../../domain/retry';
import { ConflictError, DependencyUnavailableError, NotFoundError, ValidationError } from '../../errors';
import type { MessageDoc, MessageRepository } from '../../store/messages';
import type { TenantDoc, TenantRepository } from '../../store/tenants';
import { findReplyParent, newCaseId, registerOutbound, replyToFor, type OutboundCaseDeps } from '../../cases/outbound';
import { sendWorkflowId, signalCancel, startSendMessage, type SendMessageInput } from '../../temporal/handoffs/send-message';
import { principalOf } from '../auth';
import { tenantFor as resolveTenant } from '../tenant-scope';
import { decodeCursor, nextCursor } from '../pagination';
import { parseBody, parseParam } from '../validate';
import { composeTracking, type TrackingComposer } from '../tracking/compose';

export interface MessageRouteDeps {
  tenants: TenantRepository;
  messages: MessageRepository;
  temporal: Client;
  taskQueue: string;
  policy: RetryPolicy;
  permitMarginMs: number;
  tracking: TrackingComposer & { summaryOf(doc: MessageDoc): Promise<unknown> };
  /** Case threading of outbound mail (src/cases/outbound.ts). */
  cases: OutboundCaseDeps['cases'];
  inbound: OutboundCaseDeps['inbound'];
}

/** Time-ordered, unguessable ids: 9 base36 chars of milliseconds + 16 random base62 chars. */
function newMessageId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const rand = Array.from(randomBytes(16), (b) => alphabet[b % 62]).join('');
  return `m_${Date.now().toString(36).padStart(9, '0')}${rand}`;
}

const toAddressObject = (m: Mailbox) => (typeof m === 'string' ? m : { address: m.address, name: m.name });

export function messageView(doc: MessageDoc) {
  return {
    id: doc._id,
    tenantId: doc.tenantId,
    messageId: doc.messageId,
    caseId: doc.caseId,
    status: doc.status,
    reason: doc.reason,
    lastReply: doc.lastReply,
    from: doc.from,
    subject: doc.subject,
    size: doc.size,
    sendAt: doc.sendAt?.toISOString() ?? null,
    recipients: doc.recipients.map((r) => ({ address: r.address, kind: r.kind, status: r.status, reply: r.reply ?? null })),
    attempts: doc.attempts.map((a) => ({
      n: a.n,
      at: a.at.toISOString(),
      durationMs: a.durationMs,
      outcome: a.outcome,
      reply: a.reply,
      recipients: a.recipients,
    })),
    inReplyTo: doc.inReplyTo,
    references: doc.references,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
    completedAt: doc.completedAt?.toISOString() ?? null,
  };
}

const listQuerySchema = z.strictObject({
  tenantId: z.string().min(1).max(40).optional(),
  status: z.enum(MESSAGE_STATUSES).optional(),
  caseId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

export function messageRoutes(deps: MessageRouteDeps): Router {
  const r = Router();

  /** The tenant a request acts for: its own for a tenant key; named by `tenantId` for the admin. */
  const tenantFor = (req: Request, named: string | undefined): Promise<TenantDoc> => resolveTenant(deps.tenants, req, named);

  const startWorkflow = async (doc: MessageDoc) => {
    const input: SendMessageInput = {
      tenantId: doc.tenantId,
      id: doc._id,
      ...(doc.sendAt ? { sendAt: doc.sendAt.getTime() } : {}),
      policy: deps.policy,
      permitMarginMs: deps.permitMarginMs,
      acceptedAt: doc.createdAt.getTime(),
    };
    await startSendMessage(deps.temporal, deps.taskQueue, { workflowId: doc.workflowId, input, status: doc.status, caseId: doc.caseId });
  };

  r.post('/v1/messages', async (req, res) => {
    const body = parseBody(req, messageCreateSchema);
    const tenant = await tenantFor(req, body.tenantId);
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
          await startWorkflow(existing).catch((err: unknown) => {
            throw new DependencyUnavailableError('temporal', `cannot start delivery: ${(err as Error).message}`);
          });
          res.status(202).json(acceptedView(existing));
          return;
        }
        id = claim.messageId;
      }
    }

    const doc = await buildMessage(deps, tenant, body, id);
    // buildMessage stored the body already: a message document never points at a missing body.
    const stored = await deps.messages.insert(doc.doc);
    await registerOutbound(deps, tenant, stored, doc.usedReplyToken);
    try {
      await startWorkflow(stored);
    } catch (err) {
      // Not accepted: say so in the record too, so nothing claims to be queued without a workflow.
      // A retry with the same idempotency key starts it.
      await deps.messages.col.updateOne(
        { _id: stored._id },
        { $set: { reason: 'not yet accepted: the workflow could not be started (Temporal unavailable); retry the request' } },
      );
      throw new DependencyUnavailableError('temporal', `cannot start delivery: ${(err as Error).message}`);
    }
    res.status(202).location(`/v1/messages/${stored._id}`).json(acceptedView(stored));
  });

  r.get('/v1/messages/:id', async (req, res) => {
    const id = parseParam(req.params.id, 'id', z.string().regex(/^m_[A-Za-z0-9]{10,40}$/));
    const p = principalOf(req);
    const doc = p.kind === 'tenant' ? await deps.messages.get(p.tenantId, id) : await deps.messages.findAny(id);
    if (!doc) throw new NotFoundError('message', id);
    const [live, tracking] = await Promise.all([deps.messages.withLiveStatus(doc), deps.tracking.summaryOf(doc)]);
    res.json({ ...messageView(live), tracking });
  });

  r.get('/v1/messages', async (req, res) => {
    const q = listQuerySchema.safeParse(req.query);
    if (!q.success)
      throw new ValidationError(
        'invalid query',
        q.error.issues.map((i) => ({ field: i.path.join('.') || 'query', message: i.message })),
      );
    const tenant = await tenantFor(req, q.data.tenantId);
    const before = decodeCursor(q.data.cursor);
    const docs = await deps.messages.list(tenant._id, {
      ...(q.data.status ? { status: q.data.status } : {}),
      ...(q.data.caseId ? { caseId: q.data.caseId } : {}),
      limit: q.data.limit,
      ...(before ? { before } : {}),
    });
    res.json({ items: docs.map(messageView), nextCursor: nextCursor(docs, q.data.limit) });
  });

  r.delete('/v1/messages/:id', async (req, res) => {
    const id = parseParam(req.params.id, 'id', z.string().regex(/^m_[A-Za-z0-9]{10,40}$/));
    const p = principalOf(req);
    const owner = p.kind === 'tenant' ? p.tenantId : (await deps.messages.findAny(id))?.tenantId;
    if (!owner) throw new NotFoundError('message', id);
    const doc = await deps.messages.cancel(owner, id);
    // Wake the workflow so it ends now instead of at its next timer; the store already says cancelled.
    // A failed signal is not the caller's failure: the workflow re-reads the store before every
    // attempt (the message lock refuses a cancelled message), so it ends at its next step anyway.
    await signalCancel(deps.temporal, doc.workflowId, doc.tenantId, doc._id).catch(() => undefined);
    res.json(messageView(doc));
  });

  return r;
}

function acceptedView(doc: MessageDoc) {
  return { id: doc._id, messageId: doc.messageId, caseId: doc.caseId, status: doc.status };
}

async function buildMessage(
  deps: MessageRouteDeps,
  tenant: TenantDoc,
  body: MessageCreateInput,
  id: string,
): Promise<{ doc: MessageDoc; usedReplyToken: boolean }> {
  const problems: Array<{ field: string; message: string }> = [];
  const from = mailboxAddress(body.from);
  const fromDomain = domainOf(from);
  if (!tenant.settings.domains.includes(fromDomain)) {
    problems.push({
      field: 'from',
      message: `${fromDomain} is not one of the tenant's sending domains (${tenant.settings.domains.join(', ')})`,
    });
  }
  const recipients = envelopeRecipients(body);
  const limits = tenant.settings.limits;
  if (recipients.length > limits.maxRecipientsPerMessage) {
    problems.push({
      field: 'to',
      message: `${recipients.length} recipients; the tenant allows ${limits.maxRecipientsPerMessage} per message`,
    });
  }
  for (const [name, w] of [
    ['perMinute', limits.perMinute],
    ['perHour', limits.perHour],
    ['perDay', limits.perDay],
  ] as const) {
    if (w && w.countBy === 'recipients' && recipients.length > w.max) {
      problems.push({
        field: 'to',
        message: `${recipients.length} recipients can never fit the tenant's ${name} limit of ${w.max} recipients`,
      });
    }
  }
  let sendAt: Date | null = null;
  if (body.sendAt) {
    sendAt = new Date(body.sendAt);
    if (sendAt.getTime() < Date.now() - 1000) problems.push({ field: 'sendAt', message: 'is in the past' });
  }
  let caseId = body.caseId ?? null;
  let inReplyTo: string | null = null;
  let references: string[] = [];
  if (body.inReplyTo) {
    const parent = await findReplyParent(deps, tenant._id, body.inReplyTo);
    if (!parent) {
      problems.push({ field: 'inReplyTo', message: `no message ${body.inReplyTo} for this tenant` });
    } else {
      if (parent.messageId) {
        inReplyTo = parent.messageId;
        references = referencesFor({ messageId: parent.messageId, references: parent.references });
      }
      caseId ??= parent.caseId;
    }
  }
  const tracked = composeTracking(deps.tracking, { id: tenant._id, settings: tenant.settings }, body, id, recipients.length);
  problems.push(...tracked.problems);
  // Every outbound message belongs to a case; replies find it by Message-ID or the Reply-To token.
  caseId ??= newCaseId();
  const tokenReplyTo = body.replyTo ? null : replyToFor(tenant, caseId);
  const attachments = body.attachments.map((a) => ({ ...a, content: Buffer.from(a.contentBase64, 'base64') }));
  const rawSize = attachments.reduce((n, a) => n + a.content.length, 0);
  if (rawSize > limits.maxMessageBytes) {
    problems.push({
      field: 'attachments',
      message: `attachments total ${rawSize} bytes; the tenant's limit is ${limits.maxMessageBytes} bytes per message`,
    });
  }
  if (problems.length > 0) throw new ValidationError(`invalid ${[...new Set(problems.map((p) => p.field))].join(', ')}`, problems);

  const messageId = rfcMessageId(id, fromDomain);
  const mime = await new MailComposer({
    from: toAddressObject(body.from),
    to: body.to.map(toAddressObject),
    cc: body.cc.map(toAddressObject),
    bcc: body.bcc.map(toAddressObject),
    ...(body.replyTo ? { replyTo: toAddressObject(body.replyTo) } : tokenReplyTo ? { replyTo: tokenReplyTo } : {}),
    subject: body.subject,
    ...(body.text !== undefined ? { text: body.text } : {}),
    ...(tracked.html !== undefined ? { html: tracked.html } : {}),
    attachments: attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      contentType: a.contentType,
      ...(a.contentId ? { cid: a.contentId } : {}),
    })),
    headers: { ...body.headers, ...tracked.headers, 'X-Cartero-Id': id },
    messageId,
    date: new Date(),
    ...(inReplyTo ? { inReplyTo } : {}),
    ...(references.length ? { references } : {}),
  })
    .compile()
    .build();
  if (mime.length > limits.maxMessageBytes) {
    throw new ValidationError('message too large', [
      {
        field: body.attachments.length ? 'attachments' : 'html',
        message: `the composed message is ${mime.length} bytes; the tenant's limit is ${limits.maxMessageBytes} bytes`,
      },
    ]);
  }
  const bodyRef = await deps.messages.storeBody(id, tenant._id, mime);
  const now = new Date();
  return {
    doc: {
      _id: id,
      tenantId: tenant._id,
      messageId,
      status: sendAt && sendAt.getTime() > Date.now() ? 'scheduled' : 'queued',
      from,
      subject: body.subject,
      caseId,
      inReplyTo,
      references,
      sendAt,
      idempotencyKey: body.idempotencyKey ?? null,
      recipients: recipients.map((r) => ({ ...r, status: 'pending' })),
      attempts: [],
      reason: null,
      lastReply: null,
      size: mime.length,
      body: bodyRef,
      workflowId: sendWorkflowId(tenant._id, id),
      createdAt: now,
      updatedAt: now,
      completedAt: null,
      ...(tracked.tracking ? { tracking: tracked.tracking } : {}),
    },
    usedReplyToken: tokenReplyTo !== null,
  };
}
