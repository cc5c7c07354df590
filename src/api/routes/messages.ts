import { Router, type Request } from 'express';
import { z } from 'zod';
import { MESSAGE_STATUSES, messageCreateSchema } from '../../domain/message';
import { NotFoundError, ValidationError } from '../../errors';
import { acceptMessage, cancelMessage, type OutboundDeps } from '../../outbound/accept';
import type { MessageDoc } from '../../store/messages';
import type { TenantDoc, TenantRepository } from '../../store/tenants';
import { principalOf } from '../auth';
import { tenantFor as resolveTenant } from '../tenant-scope';
import { decodeCursor, nextCursor } from '../pagination';
import { parseBody, parseParam } from '../validate';
import { caseIdSchema, messageIdSchema, tenantQuerySchema } from '../params';

export interface MessageRouteDeps extends OutboundDeps {
  tenants: TenantRepository;
  tracking: OutboundDeps['tracking'] & { summaryOf(doc: MessageDoc): Promise<unknown> };
  /** Told of each newly accepted message (the API's accepted counter). */
  onAccepted?: (preset: TenantDoc['settings']['preset']) => void;
}

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
    sentCopy: doc.sentCopy ? { ...doc.sentCopy, at: doc.sentCopy.at.toISOString(), folder: doc.sentCopy.folder ?? null } : null,
  };
}

const listQuerySchema = z.strictObject({
  tenantId: tenantQuerySchema,
  status: z.enum(MESSAGE_STATUSES).optional(),
  caseId: caseIdSchema.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

export function messageRoutes(deps: MessageRouteDeps): Router {
  const r = Router();

  /** The tenant a request acts for: its own for a tenant key; named by `tenantId` for the admin. */
  const tenantFor = (req: Request, named: string | undefined): Promise<TenantDoc> => resolveTenant(deps.tenants, req, named);

  r.post('/v1/messages', async (req, res) => {
    const body = parseBody(req, messageCreateSchema);
    const tenant = await tenantFor(req, body.tenantId);
    const { doc, repeated } = await acceptMessage(deps, tenant, body);
    if (!repeated) res.location(`/v1/messages/${doc._id}`);
    if (!repeated) deps.onAccepted?.(tenant.settings.preset);
    res.status(202).json(acceptedView(doc));
  });

  r.get('/v1/messages/:id', async (req, res) => {
    const id = parseParam(req.params.id, 'id', messageIdSchema);
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
    const id = parseParam(req.params.id, 'id', messageIdSchema);
    const p = principalOf(req);
    const owner = p.kind === 'tenant' ? p.tenantId : (await deps.messages.findAny(id))?.tenantId;
    if (!owner) throw new NotFoundError('message', id);
    const doc = await cancelMessage(deps, owner, id);
    res.json(messageView(doc));
  });

  return r;
}

function acceptedView(doc: MessageDoc) {
  return { id: doc._id, messageId: doc.messageId, caseId: doc.caseId, status: doc.status };
}
