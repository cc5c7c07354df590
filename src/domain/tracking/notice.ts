import type { Hit, Verdict } from './classify';

/** The part of a stored message a hit notice carries: what the case needs to name the reader. */
export interface HitMessage {
  _id: string;
  tenantId: string;
  caseId: string | null;
  recipients: ReadonlyArray<{ address: string }>;
}

/**
 * One human open or click, as tracking (src/api/tracking/write-hits.ts) tells the case seam
 * (src/cases/record.ts caseHitNotifier) after the hit is stored.
 */
export interface HitNotice {
  message: HitMessage;
  hit: Hit;
  verdict: Verdict;
}
