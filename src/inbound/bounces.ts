import type { InboundDoc } from '../store/inbound';

/**
 * The seam for bounces, delay notices and complaints received as mail. They are stored and
 * classified by ingestion, never threaded as replies; matching them to the message they report on
 * and suppressing the recipients belongs to the bounce issue, which plugs in here.
 */
export type BounceHandler = (doc: InboundDoc) => Promise<void>;

export const leaveBouncesForTheBounceIssue: BounceHandler = async () => undefined;
