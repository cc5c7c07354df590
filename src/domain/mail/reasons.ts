/**
 * Why a recipient failed, in one fixed vocabulary (issue 6; the names follow the bounce-reason
 * vocabulary popularised by Sisimai so tenants can compare figures). The rules and their evidence
 * are in docs/bounces.md; the order of TEXT_RULES matters (the first match wins).
 */
export const BOUNCE_REASONS = [
  'userunknown',
  'hostunknown',
  'mailboxfull',
  'exceedlimit',
  'mesgtoobig',
  'filtered',
  'rejected',
  'blocked',
  'spamdetected',
  'virusdetected',
  'policyviolation',
  'securityerror',
  'authfailure',
  'suspend',
  'expired',
  'networkerror',
  'systemerror',
  'toomanyconn',
  'ratelimited',
  'notaccept',
  'norelaying',
  'syntaxerror',
  'contenterror',
  'hasmoved',
  'undefined',
] as const;
export type BounceReason = (typeof BOUNCE_REASONS)[number];

/**
 * Reasons that say the address itself is dead, so retrying or sending again later is pointless.
 * Everything else (full mailbox, spam filters, policy, network) depends on the message, the sender
 * or the moment, and is soft even when the status is 5.x.x.
 */
const HARD_REASONS: ReadonlySet<BounceReason> = new Set(['userunknown', 'hostunknown', 'hasmoved', 'notaccept']);

/** A reason that says the address itself is dead (suppress it when the failure is permanent). */
export const isHardReason = (reason: BounceReason): boolean => HARD_REASONS.has(reason);

/** RFC 3463 / IANA "Enumerated Status Codes" subject.detail → reason. */
const STATUS_REASONS: Readonly<Record<string, BounceReason>> = {
  '1.1': 'userunknown',
  '1.2': 'hostunknown',
  '1.3': 'syntaxerror',
  '1.4': 'userunknown',
  '1.6': 'hasmoved',
  '1.7': 'rejected',
  '1.8': 'rejected',
  '1.10': 'notaccept',
  '2.1': 'suspend',
  '2.2': 'mailboxfull',
  '2.3': 'mesgtoobig',
  '2.4': 'systemerror',
  '3.0': 'systemerror',
  '3.1': 'systemerror',
  '3.2': 'notaccept',
  '3.3': 'systemerror',
  '3.4': 'mesgtoobig',
  '3.5': 'systemerror',
  '4.0': 'networkerror',
  '4.1': 'networkerror',
  '4.2': 'networkerror',
  '4.3': 'systemerror',
  '4.4': 'hostunknown',
  '4.5': 'systemerror',
  '4.6': 'networkerror',
  '4.7': 'expired',
  '5.1': 'syntaxerror',
  '5.2': 'syntaxerror',
  '5.3': 'exceedlimit',
  '5.4': 'syntaxerror',
  '5.5': 'systemerror',
  '5.6': 'syntaxerror',
  '6.0': 'contenterror',
  '6.1': 'contenterror',
  '6.2': 'contenterror',
  '6.3': 'contenterror',
  '6.4': 'contenterror',
  '6.5': 'contenterror',
  '6.6': 'contenterror',
  '6.7': 'contenterror',
  '6.8': 'contenterror',
  '6.9': 'contenterror',
  '6.10': 'contenterror',
  '7.0': 'securityerror',
  '7.1': 'policyviolation',
  '7.2': 'policyviolation',
  '7.3': 'securityerror',
  '7.4': 'securityerror',
  '7.5': 'securityerror',
  '7.6': 'securityerror',
  '7.7': 'securityerror',
  '7.8': 'securityerror',
  '7.9': 'securityerror',
  '7.10': 'securityerror',
  '7.11': 'securityerror',
  '7.12': 'securityerror',
  '7.13': 'suspend',
  '7.14': 'securityerror',
  '7.15': 'policyviolation',
  '7.16': 'mesgtoobig',
  '7.17': 'hasmoved',
  '7.18': 'hasmoved',
  '7.20': 'authfailure',
  '7.21': 'authfailure',
  '7.22': 'authfailure',
  '7.23': 'authfailure',
  '7.24': 'authfailure',
  '7.25': 'authfailure',
  '7.26': 'authfailure',
  '7.27': 'notaccept',
  '7.28': 'spamdetected',
  '7.29': 'authfailure',
  '7.30': 'securityerror',
};

/**
 * Diagnostic text → reason, most specific first. Case-insensitive; tested one by one in test/unit. "A, later on the
 * same line B" is spelled `^(?:(?!A).)*A.*B` (multiline): the `.*B` is tried from the first A of each line only,
 * where /A.*B/ tried it from every A and was quadratic on a line of As.
 */
const TEXT_RULES: ReadonlyArray<readonly [BounceReason, RegExp]> = [
  ['virusdetected', /\bvirus|malware|infected|trojan|malicious (content|attachment|payload)/i],
  [
    'norelaying',
    /relay(ing)? (access )?(is )?(denied|not permitted|not allowed|prohibited)|(not permitted|not allowed|unable) to relay|we do not relay|no relaying/i,
  ],
  ['notaccept', /does not accept (e-?)?mail|(is )?not accepting (e-?)?mail|accepts no mail|null ?mx/i],
  ['hasmoved', /has moved|user has moved|no longer (with|at|in use|available at this address)|address has changed/i],
  [
    'suspend',
    /(account|mailbox|user)( is| has been)? (disabled|suspended|inactive|deactivated|frozen|locked)|account that you tried to reach is disabled|cuenta (suspendida|deshabilitada|desactivada)|inactive (user|account|mailbox)/i,
  ],
  [
    'mailboxfull',
    /mailbox (is )?full|over ?quota|quota (exceeded|full)|exceeded (the |their |his |her )?(storage|quota)|mailbox (size )?limit exceeded|insufficient (disk )?space|(user|mailbox|recipient) has exceeded|out of storage|too many messages in (the|this) mailbox|buz[oó]n (lleno|completo)/i,
  ],
  [
    'hostunknown',
    /host (or domain name )?not found|\bhost [\w.-]+ not found|(host|domain) (is )?unknown|unknown (host|domain)|domain (name )?not found|no such domain|domain (does not|doesn'?t) exist|name service error|nxdomain|unrout(e)?able (mail )?domain|no (valid )?mx (record|host)|dns error: (domain name not found|address resolution)|domain (name )?could not be resolved/i,
  ],
  [
    'userunknown',
    /user ?unknown|unknown (user|recipient|local part|address|mailbox)|no such (user|mailbox|recipient|address|account|local user)|(user|recipient|mailbox|address|account)( name)? does ?n[o']t exist|(mailbox|recipient|user|address) (is )?(not found|unavailable)|invalid (recipient|mailbox|address|user)|not a valid (mailbox|recipient|user)|recipientnotfound|no mailbox here|unrouteable address|bad destination mailbox|address (couldn't|could not) be found|not listed in (the )?(domino )?directory|account (that you tried to reach )?does not exist|usuario (desconocido|inexistente)|no existe|does ?n[o']?t have an? [\w.-]+ account|(mail )?address is not registered|account is not available or does not exist/i,
  ],
  [
    'ratelimited',
    /rate ?limit|receiving mail at a rate|too many (messages|emails|mails)\b(?! in (the|this) mailbox)|unusual (rate|volume)|unexpected volume|sending (quota|limit)|throttl|\[ts0\d\]|daily (sending )?(quota|limit)|try again (later|in \d+)/i,
  ],
  ['toomanyconn', /too many (concurrent |simultaneous )?(smtp )?(connections|sessions)|connection (rate )?limit/i],
  [
    'authfailure',
    /\bspf\b|\bdkim\b|\bdmarc\b|\barc (validation|fail)|not (been )?authenticated|unauthenticated (email|mail|sender)|sender (domain|address) (is )?not (verified|authenticated)/i,
  ],
  [
    'securityerror',
    /\btls\b|starttls|encryption (required|needed)|certificate|authentication (required|failed|credentials invalid)|must (issue a starttls|authenticate)/i,
  ],
  ['spamdetected', /\bspam\b|\bjunk\b|unsolicited|bulk (e-?)?mail|spam ?score|content (was )?rejected as|looks like spam|classified as/i],
  [
    'blocked',
    /block ?list|black ?list|deny ?list|\bbanned\b|spamhaus|barracuda|spamcop|\brbl\b|\bdnsbl\b|listed (at|in|on|by)|poor reputation|bad reputation|reputation|^(?:(?!client host ).)*client host .*(rejected|blocked)|reverse (dns|lookup)|\bptr\b|^(?:(?!(?:ip|address|host) ).)*(ip|address|host) .*blocked|blocked (using|by)|access denied|connection refused by|\bblocked\b/im,
  ],
  [
    'filtered',
    /filtered|(recipient|user)'?s? (filter|settings|rules)|(has|have) blocked (you|the sender)|rejected by (the )?recipient|refused by (the )?recipient|delivery (not authorized|restricted)|not authorized to (send|receive)/i,
  ],
  [
    'rejected',
    /sender (address )?(rejected|denied|refused|blocked|not allowed)|sender verify failed|sender unknown|unknown sender|domain of sender|envelope (from|sender)|^(?:(?!mail from ).)*mail from .*(rejected|refused)|return.path/im,
  ],
  [
    'mesgtoobig',
    /(message|mail|email) (size )?(is |was )?too (big|large)|message size exceeds|size (limit|exceeds)|exceeds (the )?(maximum )?(message )?size|message length exceeds|too large/i,
  ],
  ['exceedlimit', /too many recipients|recipient limit|exceeds? (the |a )?(message |administrative )?limit|limit exceeded/i],
  [
    'networkerror',
    /connection (refused|timed? ?out|reset|lost|closed)|no route to host|network (is )?unreachable|lost connection|timed? ?out|(could not|unable to|failed to) connect|host (is )?unreachable|routing loop|mail loop|too many hops|loops? back to myself/i,
  ],
  ['policyviolation', /polic(y|ies)|not (allowed|permitted) by|prohibited|forbidden|not authori[sz]ed|denied|refused/i],
  [
    'expired',
    /delivery time expired|expired|too long in (the )?queue|retry time(out)? (exceeded|reached)|giving up|could not be delivered (for|within) \d|maximum (time|retry)|been in the queue too long/i,
  ],
  [
    'systemerror',
    /system (error|failure|not available)|internal (server )?error|local (configuration )?error|temporary (local )?problem|server (error|failure)|configuration error|insufficient system storage|out of memory|mail system (error|full)|try again/i,
  ],
  [
    'syntaxerror',
    /syntax error|command (unrecognized|not recognized)|bad sequence|unrecognized command|invalid (command|argument)|line too long/i,
  ],
  [
    'contenterror',
    /content (type|encoding|error)|invalid (mime|header|content)|malformed|\b8.?bit|charset|header (error|syntax)|message (header|body) (error|invalid)|bare (lf|cr)/i,
  ],
];

/** The enhanced status code (x.y.z) in a text, or null. */
export function statusIn(text: string): string | null {
  const m = /(?:^|[\s#([;:"'-])([245]\.\d{1,3}\.\d{1,3})(?![\d.])/.exec(text);
  return m?.[1] ?? null;
}

/** The reason the enhanced status code names, or null for x.0.0 and unknown codes. */
export function reasonFromStatus(status: string | null): BounceReason | null {
  if (!status) return null;
  const [, subject, detail] = status.split('.');
  return STATUS_REASONS[`${subject}.${detail}`] ?? null;
}

/** The reason a diagnostic text names, or null when no rule matches. */
export function reasonFromText(text: string | null): BounceReason | null {
  if (!text) return null;
  for (const [reason, pattern] of TEXT_RULES) if (pattern.test(text)) return reason;
  return null;
}

/** One failed, delayed or complained recipient, as a report parser (DSN, text NDR) reads it. */
export interface Bounce {
  recipient: string;
  /** Enhanced status code (RFC 3463), e.g. `5.1.1`, when the report or the diagnostic has one. */
  status: string | null;
  /** The address is dead (unknown user or domain, moved, null MX): suppress it. */
  hard: boolean;
  reason: BounceReason;
  /** The remote server's reply or the MTA's explanation, verbatim apart from whitespace. */
  diagnostic: string | null;
}

export interface RecipientOutcome {
  status: string | null;
  hard: boolean;
  reason: BounceReason;
}

/**
 * Decides reason and hardness for one failed recipient. The diagnostic text wins over the status
 * code because servers often answer a generic 5.7.1 / 5.0.0 while the text says what happened;
 * the status decides when the text is silent. A failure with a 4.x.x status means the MTA gave up
 * retrying a temporary error: `expired` (the diagnostic still carries the last error).
 */
export function outcomeFor(input: { status: string | null; diagnostic: string | null; failed: boolean }): RecipientOutcome {
  const status = input.status ?? statusIn(input.diagnostic ?? '');
  const textual = reasonFromText(input.diagnostic);
  const gaveUp = input.failed && status !== null && status.startsWith('4');
  const reason: BounceReason = gaveUp ? 'expired' : (textual ?? reasonFromStatus(status) ?? 'undefined');
  const permanent = status ? status.startsWith('5') : !/(?:^|\D)4\d\d(?:\D|$)/.test(input.diagnostic ?? '') && input.failed;
  return { status, reason, hard: input.failed && permanent && HARD_REASONS.has(reason) };
}
