import { fieldValue } from './fields';

/**
 * Auto-reply detection (RFC 3834 and the de-facto headers vacation responders set). Returns the
 * rule that matched, or null. Callers check bounces and complaints first: DSNs also carry
 * `Auto-Submitted: auto-replied` (Postfix sets it on every bounce).
 */
export function autoReplyRule(mail: {
  headers: ReadonlyArray<{ name: string; value: string }>;
  subject: string;
  text: string;
}): string | null {
  const header = (n: string) => fieldValue(mail.headers, n);
  const autoSubmitted = header('auto-submitted')?.toLowerCase().trim();
  // RFC 3834 §5: any value other than "no" marks an automatic message.
  if (autoSubmitted && !autoSubmitted.startsWith('no')) return 'autoreply-auto-submitted';
  if (header('x-autoreply') !== null) return 'autoreply-x-autoreply';
  if (header('x-autorespond') !== null || header('x-autoresponder') !== null) return 'autoreply-x-autorespond';
  const precedence = header('precedence')?.toLowerCase().trim();
  if (precedence === 'auto_reply' || precedence === 'bulk' || precedence === 'junk') return 'autoreply-precedence';
  if (AUTOREPLY_SUBJECT.test(mail.subject)) return 'autoreply-subject';
  // Only the start of the body: a human reply may quote an old out-of-office further down.
  if (AUTOREPLY_BODY.test(mail.text.slice(0, 600))) return 'autoreply-body';
  return null;
}

const AUTOREPLY_SUBJECT =
  /^\s*(?:\[?auto(?:matic|matische|matique)?[\s_-]?(?:reply|response|answer|antwort|r[ée]ponse)\]?|out of (?:the )?office|ooo\b|away from (?:the )?office|on (?:vacation|holiday|leave)|respuesta autom[aá]tica|contestaci[oó]n autom[aá]tica|fuera de (?:la )?oficina|ausencia|estoy de vacaciones|de vacaciones|abwesenheit|absence|r[ée]ponse automatique)/i;

const AUTOREPLY_BODY =
  /\b(?:I am|I'm) (?:currently )?(?:out of (?:the )?office|away from (?:the|my) (?:office|desk)|on (?:vacation|holiday|annual leave|leave|parental leave))|I will be (?:out of (?:the )?office|away|on (?:vacation|holiday|leave)) (?:from|until)|limited access to (?:my )?e-?mail|(?:this is|esta es) an? automatic(?:ally generated)? (?:reply|response|message)|(?:respond|reply|get back to you) (?:to your (?:e-?mail|message) )?(?:upon|when I|on my) return|(?:me encuentro|estoy|estar[eé]) (?:fuera de la oficina|de vacaciones|ausente)|con acceso limitado al correo|(?:este es|esta es) (?:un|una) (?:mensaje|correo|respuesta) autom[aá]tic|responder[eé] (?:a )?su (?:correo|mensaje) (?:a mi regreso|cuando regrese)/i;
