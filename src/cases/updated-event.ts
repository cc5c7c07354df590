import type { CaseSummary } from '../domain/cases';
import type { EventInput } from '../domain/events';

/** `case.updated` for one version of a case's summary (its id carries the version: one per change). */
export function caseUpdatedEvent(summary: CaseSummary): EventInput {
  return {
    id: `case.updated:${summary.tenantId}:${summary.caseId}:${summary.eventCount}`,
    tenantId: summary.tenantId,
    type: 'case.updated',
    caseId: summary.caseId,
    data: {
      status: summary.status,
      eventCount: summary.eventCount,
      counts: summary.counts,
      participants: summary.participants,
      lastActivityAt: summary.lastActivityAt === null ? null : new Date(summary.lastActivityAt).toISOString(),
    },
  };
}
