import { randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { emptyCounts, type CaseSummary } from '../../domain/cases';
import { tenantIdSchema } from '../../domain/tenant';
import { DependencyUnavailableError, ValidationError } from '../../errors';
import type { CaseDoc, CaseEventDoc, CaseRepository } from '../../store/cases';
import { updateCaseStatus } from '../../temporal/handoffs/case';
import { principalOf } from '../auth';
import { parseParam } from '../validate';
import { caseIdSchema } from '../params';

export interface CaseRouteDeps {
  cases: CaseRepository;
  temporal: Client;
  taskQueue: string;
}

const tenantQuery = z.strictObject({ tenantId: tenantIdSchema.optional() });
const timelineQuery = z.strictObject({
  tenantId: tenantIdSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(300).optional(),
});

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function caseView(doc: CaseDoc | CaseSummary) {
  return {
    id: doc.caseId,
    tenantId: doc.tenantId,
    status: doc.status,
    subject: doc.subject,
    participants: doc.participants,
    counts: { ...emptyCounts(), ...doc.counts },
    eventCount: doc.eventCount,
    firstActivityAt: iso(doc.firstActivityAt),
    lastActivityAt: iso(doc.lastActivityAt),
    lastInboundAt: iso(doc.lastInboundAt),
    closedAt: iso(doc.closedAt),
  };
}

const eventView = (e: CaseEventDoc) => ({ id: e.eventId, kind: e.kind, at: e.at.toISOString(), ref: e.ref, data: e.data });

function queryOf<S extends z.ZodType>(req: Request, schema: S): z.infer<S> {
  const q = schema.safeParse(req.query);
  if (!q.success)
    throw new ValidationError(
      'invalid query',
      q.error.issues.map((i) => ({ field: i.path.join('.') || 'query', message: i.message })),
    );
  return q.data;
}

/** The tenant a case request acts for: its own for a tenant key; `?tenantId=` for the admin. */
function tenantOf(req: Request, named: string | undefined): string {
  const p = principalOf(req);
  if (p.kind === 'tenant') return p.tenantId;
  if (!named)
    throw new ValidationError('the admin key must name tenantId', [{ field: 'tenantId', message: 'required with the admin key' }]);
  return named;
}

/**
 * Cases: the summary the case workflow saved, the timeline from MongoDB, and close/reopen as
 * workflow updates (update-with-start, so a case whose workflow ended still answers). Another
 * tenant's case is a 404.
 */
export function caseRoutes(deps: CaseRouteDeps): Router {
  const r = Router();

  r.get('/v1/cases/:id', async (req, res) => {
    const caseId = parseParam(req.params.id, 'id', caseIdSchema);
    const tenantId = tenantOf(req, queryOf(req, tenantQuery).tenantId);
    res.json(caseView(await deps.cases.get(tenantId, caseId)));
  });

  r.get('/v1/cases/:id/timeline', async (req, res) => {
    const caseId = parseParam(req.params.id, 'id', caseIdSchema);
    const q = queryOf(req, timelineQuery);
    const tenantId = tenantOf(req, q.tenantId);
    await deps.cases.get(tenantId, caseId);
    let after: { at: Date; id: string } | undefined;
    if (q.cursor) {
      const [ts, id] = Buffer.from(q.cursor, 'base64url').toString('utf8').split('|');
      const at = new Date(ts ?? '');
      if (!id || Number.isNaN(at.getTime()))
        throw new ValidationError('invalid cursor', [{ field: 'cursor', message: 'not a cursor returned by this API' }]);
      after = { at, id };
    }
    const events = await deps.cases.timeline(tenantId, caseId, { limit: q.limit, ...(after ? { after } : {}) });
    const last = events.at(-1);
    res.json({
      items: events.map(eventView),
      nextCursor: events.length === q.limit && last ? Buffer.from(`${last.at.toISOString()}|${last._id}`).toString('base64url') : null,
    });
  });

  for (const [action, kind] of [
    ['close', 'closed'],
    ['reopen', 'reopened'],
  ] as const) {
    r.post(`/v1/cases/:id/${action}`, async (req, res) => {
      const caseId = parseParam(req.params.id, 'id', caseIdSchema);
      const tenantId = tenantOf(req, queryOf(req, tenantQuery).tenantId);
      await deps.cases.get(tenantId, caseId);
      const at = new Date();
      const eventId = `${kind}:${at.getTime().toString(36)}${randomBytes(4).toString('hex')}`;
      await deps.cases.appendEvent({ tenantId, caseId, eventId, kind, at, ref: null, data: { by: principalOf(req).kind } });
      // Closing and reopening are the case workflow's (src/cases/record.ts, STORE_ONLY_KINDS).
      await deps.cases.goLive(tenantId, caseId);
      let summary: CaseSummary;
      try {
        summary = await updateCaseStatus(deps.temporal, deps.taskQueue, tenantId, caseId, action, { eventId, at: at.getTime() });
      } catch (err) {
        throw new DependencyUnavailableError('temporal', `cannot ${action} the case now; retry`, err);
      }
      res.json(caseView(summary));
    });
  }
  return r;
}
