import { classifyMail, returnedRecipients, type MailVerdict } from '../domain/mail/classify';
import { combineVerdicts, type FinalVerdict } from '../domain/mail/combine';
import { mailFromRaw } from './mime';
import { sisimai, type SisimaiBridge, type SisimaiRecord } from './sisimai';

/**
 * The one bounce verdict on a raw message (docs/bounces.md): Cartero's classifier (on the parse pool) and Sisimai
 * (the process-wide Perl bridge) on the same bytes at once, combined by combineVerdicts. Without Sisimai (not
 * installed, busy, timed out) it is Cartero's verdict alone. Refuses what mailFromRaw refuses (ValidationError).
 */
export async function verdictForRaw(
  raw: Buffer,
  engine: SisimaiBridge | null = sisimai(),
): Promise<{ verdict: FinalVerdict; cartero: MailVerdict; sisimai: SisimaiRecord[] | null }> {
  const [mail, records] = await Promise.all([mailFromRaw(raw), engine ? engine.verdicts(raw) : Promise.resolve(null)]);
  const cartero = classifyMail(mail);
  return { verdict: combineVerdicts(cartero, records, returnedRecipients(mail)), cartero, sisimai: records };
}
