import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Writes the bounce corpus test/fixtures/bounces/<source>/<name>.eml and its expected verdicts
 * test/fixtures/bounces/expected.json (docs/bounces.md "Corpus"). Each source is a template in that vendor's own
 * format (its sentences, MIME structure, DSN fields, the place it puts the returned message), written from the
 * vendors' documentation, RFC 3464/3461/5965/3834 and public descriptions of real notices; the variants change
 * recipients, codes and reasons. The expected verdict comes from the template's inputs (what the notice says),
 * never from a parser. Deterministic: running it again writes the same files.
 *
 *   npx tsc -p tsconfig.test.json && node .build-test/bench/bounce-corpus.js
 */

export interface ExpectedBounce {
  recipient: string;
  /** The enhanced status code the notice gives for this recipient, null when it gives none (not scored). */
  status: string | null;
  /** The address is dead (unknown user or domain): suppress. */
  hard: boolean;
}
export interface ExpectedVerdict {
  kind: 'bounce' | 'delay' | 'complaint' | 'autoreply' | 'human';
  bounces: ExpectedBounce[];
  /** Message-ID of the message reported on or answered, when the notice carries it (null: not scored). */
  originalMessageId: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic ingredients
// ---------------------------------------------------------------------------------------------------------------
let seed = 20250614;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed;
}
const hex = (n: number) => Array.from({ length: n }, () => ((rnd() >> 16) % 16).toString(16)).join('');
const pick = <T>(xs: readonly T[]): T => xs[(rnd() >> 16) % xs.length]!;
const NAMES = ['alice', 'bruno', 'chloe', 'dmitri', 'elena', 'farid', 'greta', 'hiro', 'ines', 'jonas', 'keiko', 'luca'];
const SUBJECTS = ['Your order 4471', 'Case #2291 updated', 'Invoice 2025-118', 'Your ticket was answered', 'Password reset'];
const TENANT = 'acme.example';
const date = (i: number) =>
  `Sat, 14 Jun 2025 ${String(8 + (i % 10)).padStart(2, '0')}:${String(10 + ((i * 7) % 50)).padStart(2, '0')}:05 +0000`;

function person(domain: string): string {
  return `${pick(NAMES)}.${hex(3)}@${domain}`;
}
function mid(): string {
  return `<${hex(20)}.cartero@${TENANT}>`;
}
function b64(text: string): string {
  return (
    Buffer.from(text, 'utf8')
      .toString('base64')
      .match(/.{1,76}/g)
      ?.join('\n') ?? ''
  );
}
/** RFC 2047 encoded word for a non-ASCII subject. */
const enc = (s: string) => (/^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`);

/** The message Cartero sent, as a returned copy shows it. */
function original(to: string, messageId: string, subject: string, i: number, headersOnly = false): string {
  const h = [
    `Return-Path: <support@${TENANT}>`,
    `Received: from cartero-worker-1 (worker.${TENANT} [198.51.100.7]) by smtp.${TENANT} with ESMTPSA id ${hex(8)}; ${date(i)}`,
    `From: Acme Support <support@${TENANT}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Date: ${date(i)}`,
    `Message-ID: ${messageId}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ];
  return headersOnly ? `${h.join('\n')}\n` : `${h.join('\n')}\n\nHello,\n\nyour request has been updated.\n\n-- \nAcme Support\n`;
}

/** Reasons the variants are drawn from: what the notice says, the truth the expected verdict carries. */
type Why = 'unknown' | 'nodomain' | 'full' | 'disabled' | 'spam' | 'blocked' | 'relay' | 'dmarc' | 'rate' | 'toobig' | 'delay';
const WHY: Record<Why, { status: string; reply: string; text: string; hard: boolean }> = {
  unknown: { status: '5.1.1', reply: '550', text: 'User unknown', hard: true },
  nodomain: { status: '5.1.2', reply: '550', text: 'Host or domain name not found', hard: true },
  full: { status: '5.2.2', reply: '552', text: 'Mailbox full: quota exceeded', hard: false },
  disabled: { status: '5.2.1', reply: '550', text: 'Mailbox disabled for this recipient', hard: false },
  spam: { status: '5.7.1', reply: '554', text: 'Message rejected as spam by content filter', hard: false },
  blocked: {
    status: '5.7.1',
    reply: '554',
    text: 'Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org',
    hard: false,
  },
  relay: { status: '5.7.1', reply: '550', text: 'Relaying denied', hard: false },
  dmarc: {
    status: '5.7.26',
    reply: '550',
    text: "Unauthenticated email is not accepted due to the sending domain's DMARC policy",
    hard: false,
  },
  rate: { status: '4.7.0', reply: '421', text: 'Too many messages from your IP, rate limited, try again later', hard: false },
  toobig: { status: '5.3.4', reply: '552', text: 'Message size exceeds fixed maximum message size', hard: false },
  delay: { status: '4.4.1', reply: '451', text: 'Connection timed out', hard: false },
};

interface Sample {
  name: string;
  eml: string;
  expected: ExpectedVerdict;
}
type Template = (why: Why, i: number) => Sample;

const bounce = (
  recipient: string,
  status: string | null,
  why: Why,
  messageId: string | null,
  kind?: 'bounce' | 'delay',
): ExpectedVerdict => ({
  kind: kind ?? (why === 'delay' ? 'delay' : 'bounce'),
  bounces: [{ recipient, status, hard: WHY[why].hard }],
  originalMessageId: messageId,
});

// ---------------------------------------------------------------------------------------------------------------
// MIME shapes
// ---------------------------------------------------------------------------------------------------------------
interface DsnRecipient {
  final?: string | null;
  original?: string;
  action: string;
  status: string;
  diag?: string;
  remoteMta?: string;
  extra?: string[];
}
interface DsnInput {
  from: string;
  subject: string;
  i: number;
  human: string;
  humanType?: string;
  humanHtml?: string;
  reportingMta: string;
  perMessage?: string[];
  rcpts: DsnRecipient[];
  returned: string | null;
  returnedType?: 'message/rfc822' | 'text/rfc822-headers';
  headers?: string[];
  noReportType?: boolean;
}
function dsn(o: DsnInput): string {
  const bd = `=_${hex(12)}`;
  const rc = o.rcpts
    .map((r) =>
      [
        r.original ? `Original-Recipient: ${r.original}` : null,
        r.final === null ? null : `Final-Recipient: ${r.final}`,
        `Action: ${r.action}`,
        `Status: ${r.status}`,
        r.remoteMta ? `Remote-MTA: ${r.remoteMta}` : null,
        r.diag ? `Diagnostic-Code: ${r.diag}` : null,
        ...(r.extra ?? []),
      ]
        .filter((l) => l !== null)
        .join('\n'),
    )
    .join('\n\n');
  const human = o.humanHtml
    ? [
        `--${bd}`,
        `Content-Type: multipart/alternative; boundary="${bd}a"`,
        '',
        `--${bd}a`,
        o.humanType ?? 'Content-Type: text/plain; charset=us-ascii',
        '',
        o.human,
        `--${bd}a`,
        'Content-Type: text/html; charset=utf-8',
        '',
        o.humanHtml,
        `--${bd}a--`,
      ]
    : [`--${bd}`, 'Content-Description: Notification', o.humanType ?? 'Content-Type: text/plain; charset=us-ascii', '', o.human];
  return [
    `From: ${o.from}`,
    `To: <support@${TENANT}>`,
    `Subject: ${o.subject}`,
    `Date: ${date(o.i)}`,
    `Message-ID: <${hex(16)}@${o.reportingMta.replace(/^dns; ?/i, '')}>`,
    ...(o.headers ?? ['Auto-Submitted: auto-replied']),
    'MIME-Version: 1.0',
    o.noReportType
      ? `Content-Type: multipart/mixed; boundary="${bd}"`
      : `Content-Type: multipart/report; report-type=delivery-status; boundary="${bd}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    ...human,
    '',
    `--${bd}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: ${o.reportingMta}`,
    ...(o.perMessage ?? [`Arrival-Date: ${date(o.i)}`]),
    '',
    rc,
    '',
    ...(o.returned === null
      ? []
      : [`--${bd}`, `Content-Description: Undelivered Message`, `Content-Type: ${o.returnedType ?? 'message/rfc822'}`, '', o.returned]),
    `--${bd}--`,
    '',
  ].join('\n');
}

interface PlainInput {
  from: string;
  subject: string;
  i: number;
  body: string;
  headers?: string[];
  charset?: string;
  base64?: boolean;
  /** A returned message attached as message/rfc822 (multipart/mixed) rather than pasted into the text. */
  attach?: string;
  attachType?: string;
}
function plain(o: PlainInput): string {
  const top = [
    `From: ${o.from}`,
    `To: <support@${TENANT}>`,
    `Subject: ${o.subject}`,
    `Date: ${date(o.i)}`,
    `Message-ID: <${hex(16)}@${/@([^>\s]+)/.exec(o.from)?.[1] ?? 'mx.example'}>`,
    ...(o.headers ?? []),
    'MIME-Version: 1.0',
  ];
  const cs = o.charset ?? 'us-ascii';
  const bodyHeaders = o.base64
    ? [`Content-Type: text/plain; charset=${cs}`, 'Content-Transfer-Encoding: base64']
    : [`Content-Type: text/plain; charset=${cs}`, ...(cs === 'us-ascii' ? [] : ['Content-Transfer-Encoding: 8bit'])];
  const body = o.base64 ? b64(o.body) : o.body;
  if (!o.attach) return [...top, ...bodyHeaders, '', body, ''].join('\n');
  const bd = `--${hex(10)}`;
  return [
    ...top,
    `Content-Type: multipart/mixed; boundary="${bd}"`,
    '',
    `--${bd}`,
    ...bodyHeaders,
    '',
    body,
    `--${bd}`,
    `Content-Type: ${o.attachType ?? 'message/rfc822'}`,
    '',
    o.attach,
    `--${bd}--`,
    '',
  ].join('\n');
}

const mailerDaemon = (host: string, name = 'Mail Delivery System') => `${name} <MAILER-DAEMON@${host}>`;
const subj = () => pick(SUBJECTS);

// ---------------------------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------------------------
const S: Record<string, { variants: Why[]; make: Template }> = {};
const source = (name: string, variants: Why[], make: Template) => (S[name] = { variants, make });

// Postfix: bounce(5) templates, multipart/report, X-Postfix or smtp diagnostics, "(in reply to RCPT TO command)".
source('postfix', ['unknown', 'full', 'nodomain', 'relay', 'blocked', 'delay'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `no-such-${hex(4)}.example` : 'mail.example.org');
  const m = mid();
  const w = WHY[why];
  const host = 'mx.example.org[203.0.113.25]';
  const said =
    why === 'nodomain'
      ? `Host or domain name not found. Name service error for name=${rcpt.split('@')[1]} type=A: Host not found`
      : why === 'delay'
        ? `connect to ${host}:25: Connection timed out`
        : `host ${host} said: ${w.reply} ${w.status} <${rcpt}>: ${w.text} (in reply to RCPT TO command)`;
  const delay = why === 'delay';
  return {
    name: `postfix-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('smtp.acme.example'),
      subject: delay ? 'Delayed Mail (still being retried)' : 'Undelivered Mail Returned to Sender',
      i,
      human: delay
        ? `This is the mail system at host smtp.acme.example.\n\n####################################################################\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n####################################################################\n\nYour message could not be delivered for more than 4 hour(s).\nIt will be retried until it is 5 day(s) old.\n\n                   The mail system\n\n<${rcpt}>: ${said}\n`
        : `This is the mail system at host smtp.acme.example.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n\nFor further assistance, please send mail to postmaster.\n\nIf you do so, please include this problem report. You can\ndelete your own text from the attached returned message.\n\n                   The mail system\n\n<${rcpt}>: ${said}\n`,
      reportingMta: 'dns; smtp.acme.example',
      perMessage: [
        `X-Postfix-Queue-ID: ${hex(10).toUpperCase()}`,
        `X-Postfix-Sender: rfc822; support@${TENANT}`,
        `Arrival-Date: ${date(i)}`,
      ],
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          original: `rfc822;${rcpt}`,
          action: delay ? 'delayed' : 'failed',
          status: why === 'nodomain' ? '5.4.4' : w.status,
          remoteMta: why === 'nodomain' || delay ? undefined : 'dns; mx.example.org',
          diag: why === 'nodomain' || delay ? `X-Postfix; ${said}` : `smtp; ${w.reply} ${w.status} <${rcpt}>: ${w.text}`,
          extra: delay ? [`Will-Retry-Until: Thu, 19 Jun 2025 08:00:00 +0000 (UTC)`] : [],
        },
      ],
      returned: delay ? original(rcpt, m, subj(), i, true) : original(rcpt, m, subj(), i),
      returnedType: delay ? 'text/rfc822-headers' : 'message/rfc822',
    }),
    expected: bounce(rcpt, why === 'nodomain' ? '5.4.4' : w.status, why, m),
  };
});

// Sendmail 8: multipart/report, "----- The following addresses had permanent fatal errors -----", transcript.
source('sendmail', ['unknown', 'full', 'relay', 'spam', 'delay'], (why, i) => {
  const rcpt = person('example.net');
  const m = mid();
  const w = WHY[why];
  const delay = why === 'delay';
  const human = delay
    ? `The original message was received at ${date(i)}\nfrom smtp.${TENANT} [198.51.100.7]\n\n   ----- Transcript of session follows -----\n<${rcpt}>... Deferred: Connection timed out with mx.example.net.\nWarning: message still undelivered after 4 hours\nWill keep trying until message is 5 days old\n`
    : `The original message was received at ${date(i)}\nfrom smtp.${TENANT} [198.51.100.7]\n\n   ----- The following addresses had permanent fatal errors -----\n<${rcpt}>\n    (reason: ${w.reply} ${w.status} ${w.text})\n\n   ----- Transcript of session follows -----\n... while talking to mx.example.net.:\n>>> RCPT To:<${rcpt}>\n<<< ${w.reply} ${w.status} ${w.text}\n${w.reply} ${w.status} <${rcpt}>... ${w.text}\n`;
  return {
    name: `sendmail-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('relay.example.com', 'Mail Delivery Subsystem'),
      subject: delay ? 'Warning: could not send message for past 4 hours' : 'Returned mail: see transcript for details',
      i,
      human,
      reportingMta: 'dns; relay.example.com',
      perMessage: [`Received-From-MTA: DNS; smtp.${TENANT}`, `Arrival-Date: ${date(i)}`],
      rcpts: [
        {
          final: `RFC822; ${rcpt}`,
          action: delay ? 'delayed' : 'failed',
          status: w.status,
          remoteMta: 'DNS; mx.example.net',
          diag: `SMTP; ${w.reply} ${w.status} ${w.text}`,
          extra: [`Last-Attempt-Date: ${date(i)}`],
        },
      ],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
      headers: ['Auto-Submitted: auto-generated (failure)'],
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Exim: plain text, X-Failed-Recipients, indented address and "SMTP error from remote mail server after RCPT TO".
function eximBody(rcpt: string, why: Why, copyHeader: string, returned: string, host: string): string {
  const w = WHY[why];
  if (why === 'delay')
    return `This message was created automatically by mail delivery software.\n\nA message that you sent has not yet been delivered to one or more of its\nrecipients after more than 24 hours on the queue on ${host}.\n\nThe message identifier is:     1uQ${hex(3)}-000${hex(3)}-AB\nThe subject of the message is: Hello\n\nThe address to which the message has not yet been delivered is:\n\n  ${rcpt}\n    host mx.example.com [203.0.113.9]\n    Delay reason: SMTP error from remote mail server after RCPT TO:<${rcpt}>:\n    451 4.4.1 Connection timed out\n\nNo action is required on your part. Delivery attempts will continue for\nsome time, and this warning may be repeated at intervals if the message\nremains undelivered. Eventually the mail delivery software will give up,\nand when that happens, the message will be returned to you.\n`;
  const detail =
    why === 'nodomain'
      ? `    Unrouteable address`
      : `    host mx.example.com [203.0.113.9]\n    SMTP error from remote mail server after RCPT TO:<${rcpt}>:\n    ${w.reply} ${w.status} ${w.text}`;
  return `This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  ${rcpt}\n${detail}\n\n${copyHeader}\n\n${returned}`;
}
source('exim', ['unknown', 'full', 'disabled', 'spam', 'nodomain', 'delay'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `gone-${hex(4)}.example` : 'example.com');
  const m = mid();
  const delay = why === 'delay';
  return {
    name: `exim-${why}-${i}`,
    eml: plain({
      from: mailerDaemon('mx1.hosting.example'),
      subject: delay ? 'Warning: message 1uQabc-000def-AB delayed 24 hours' : 'Mail delivery failed: returning message to sender',
      i,
      headers: delay ? ['Auto-Submitted: auto-replied'] : [`X-Failed-Recipients: ${rcpt}`, 'Auto-Submitted: auto-replied'],
      body: eximBody(
        rcpt,
        why,
        '------ This is a copy of the message, including all the headers. ------',
        original(rcpt, m, subj(), i),
        'mx1.hosting.example',
      ),
    }),
    // Exim text carries no status for an unrouteable address.
    expected: bounce(rcpt, why === 'nodomain' ? null : WHY[why].status, why, delay ? null : m),
  };
});

// mail.ru: Exim-based, its own subject and the same copy marker.
source('mailru', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('mail.ru');
  const m = mid();
  const w = WHY[why];
  const text =
    why === 'unknown'
      ? 'Message was not accepted -- invalid mailbox.  Local mailbox ' + rcpt + ' is unavailable: user not found'
      : why === 'full'
        ? 'Message can not be delivered: mailbox is full (quota exceeded)'
        : 'Message rejected under suspicion of SPAM; https://help.mail.ru/mail/spam/blocks';
  const status = why === 'unknown' ? '5.1.1' : why === 'full' ? '5.2.2' : '5.7.1';
  return {
    name: `mailru-${why}-${i}`,
    eml: plain({
      from: mailerDaemon('corp.mail.ru', 'Mail Delivery System'),
      subject: 'Mail delivery failed: returning message to sender',
      i,
      headers: [`X-Failed-Recipients: ${rcpt}`, 'Auto-Submitted: auto-replied'],
      body: `This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  ${rcpt}\n    SMTP error from remote mail server after end of data:\n    ${w.reply} ${status} ${text}\n\n------ This is a copy of the message, including all the headers. ------\n\n${original(rcpt, m, subj(), i)}`,
    }),
    expected: bounce(rcpt, status, why, m),
  };
});

// Zoho: Exim-like text, the Zoho Received line, returned headers pasted.
source('zoho', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('zoho.example');
  const m = mid();
  const w = WHY[why];
  return {
    name: `zoho-${why}-${i}`,
    eml: plain({
      from: `mailer-daemon@mail.zoho.com`,
      subject: 'Undelivered Mail Returned to Sender',
      i,
      headers: [
        `Received: from mail.zoho.com by mx.zohomail.com with SMTP id ${hex(12)}; ${date(i)}`,
        'X-ZohoMail: Si CHF_MF_NL SS_10 UW48 UB48 FMWL UW48 UB48 SGR3_1_2_0',
      ],
      body: `This message was created automatically by mail delivery software.\nA message that you sent could not be delivered to one or more of its recipients. This is a permanent error.\n\n${rcpt}, ERROR CODE :${w.reply} - ${w.status} ${w.text}\n\nReceived: from mail.zoho.com by mx.zohomail.com\n${original(rcpt, m, subj(), i, true)}`,
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// GMX and WEB.DE (same platform): "--- The header of the original message is following. ---".
for (const [name, host] of [
  ['gmx', 'gmx.net'],
  ['webde', 'web.de'],
] as const) {
  source(name, ['unknown', 'full', 'spam'], (why, i) => {
    const rcpt = person(host);
    const m = mid();
    const w = WHY[why];
    const said =
      why === 'unknown'
        ? `Requested action not taken: mailbox unavailable`
        : why === 'full'
          ? 'Mailbox quota exceeded'
          : 'Mail rejected due to suspected spam';
    return {
      name: `${name}-${why}-${i}`,
      eml: plain({
        from: `"Mail Delivery System" <mailer-daemon@${name === 'gmx' ? 'gmx.net' : 'web.de'}>`,
        subject: 'Mail delivery failed: returning message to sender',
        i,
        body: `This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of\nits recipients. This is a permanent error. The following address(es)\nfailed:\n\n${rcpt}\nSMTP error from remote server for RCPT TO command, host: mx00.emig.${host} (212.227.15.9) reason: ${w.reply} ${w.status} ${said}\n\n--- The header of the original message is following. ---\n\n${original(rcpt, m, subj(), i, true)}`,
      }),
      expected: bounce(rcpt, w.status, why, m),
    };
  });
}

// qmail: QSBMF, "Hi. This is the qmail-send program".
source('qmail', ['unknown', 'full', 'blocked'], (why, i) => {
  const rcpt = person('qmail.example');
  const m = mid();
  const w = WHY[why];
  const block =
    why === 'unknown'
      ? `<${rcpt}>:\nSorry, no mailbox here by that name. (#5.1.1)`
      : why === 'full'
        ? `<${rcpt}>:\nThe users mailfolder is over the allowed quota (size). (#5.2.2)`
        : `<${rcpt}>:\n203.0.113.40 does not like recipient.\nRemote host said: ${w.reply} ${w.status} ${w.text}\nGiving up on 203.0.113.40.`;
  return {
    name: `qmail-${why}-${i}`,
    eml: plain({
      from: `MAILER-DAEMON@qmail.example`,
      subject: 'failure notice',
      i,
      body: `Hi. This is the qmail-send program at qmail.example.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n${block}\n\n--- Below this line is a copy of the message.\n\n${original(rcpt, m, subj(), i)}`,
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Yahoo: qmail-derived text with its own error numbers and no enhanced code.
source('yahoo', ['unknown', 'disabled', 'full'], (why, i) => {
  const rcpt = person('yahoo.com');
  const m = mid();
  const said =
    why === 'unknown'
      ? `Remote host said: 554 delivery error: dd This user doesn't have a yahoo.com account (${rcpt}) [0] - mta1023.mail.ir2.yahoo.com [RCPT_TO]`
      : why === 'disabled'
        ? `Remote host said: 554 delivery error: dd Sorry your message to ${rcpt} cannot be delivered. This mailbox is disabled (554.30). - mta1151.mail.gq1.yahoo.com [BODY]`
        : `Remote host said: 552 1 Requested mail action aborted, mailbox is over quota [RCPT_TO]`;
  return {
    name: `yahoo-${why}-${i}`,
    eml: plain({
      from: 'MAILER-DAEMON@yahoo.com',
      subject: 'Failure Notice',
      i,
      body: `Sorry, we were unable to deliver your message to the following address.\n\n<${rcpt}>:\n${said}\n\n--- Below this line is a copy of the message.\n\n${original(rcpt, m, subj(), i)}`,
    }),
    expected: { kind: 'bounce', bounces: [{ recipient: rcpt, status: null, hard: why === 'unknown' }], originalMessageId: m },
  };
});

// AOL (Verizon Media platform): RFC 3464 report, its own texts.
source('aol', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('aol.com');
  const m = mid();
  const w = WHY[why];
  const said =
    why === 'unknown'
      ? '550 5.1.1 <' + rcpt + '>: Recipient address rejected: aol.com'
      : why === 'full'
        ? '552 5.2.2 Mailbox size limit exceeded'
        : '554 5.7.9 Message not accepted for policy reasons.  See https://help.yahoo.com/kb/postmaster';
  const status = why === 'spam' ? '5.7.9' : w.status;
  return {
    name: `aol-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('aol.com', 'Mail Delivery Subsystem'),
      subject: 'Returned mail: see transcript for details',
      i,
      human: `The original message was received at ${date(i)}\nfrom smtp.${TENANT} [198.51.100.7]\n\n*** ATTENTION ***\n\nYour e-mail is being returned to you because there was a problem with its\ndelivery.  The address which was undeliverable is listed in the section\nlabeled: "----- The following addresses had permanent fatal errors -----".\n\n   ----- The following addresses had permanent fatal errors -----\n<${rcpt}>\n\n   ----- Transcript of session follows -----\n... while talking to mx-aol.mail.gm0.yahoodns.net.:\n>>> RCPT To:<${rcpt}>\n<<< ${said}\n`,
      reportingMta: 'dns; omr-m012e.mx.aol.com',
      rcpts: [
        { final: `RFC822; ${rcpt}`, action: 'failed', status, remoteMta: 'DNS; mx-aol.mail.gm0.yahoodns.net', diag: `SMTP; ${said}` },
      ],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
    }),
    expected: bounce(rcpt, status, why, m),
  };
});

// Courier: multipart/report, "Your message to the following recipients cannot be delivered".
source('courier', ['unknown', 'spam', 'full'], (why, i) => {
  const rcpt = person('courier.example');
  const m = mid();
  const w = WHY[why];
  return {
    name: `courier-${why}-${i}`,
    eml: dsn({
      from: `Courier mail server at mx.courier.example <@>`,
      subject: 'NOTICE: mail delivery status.',
      i,
      human: `This is a delivery status notification from mx.courier.example,\nrunning the Courier mail server, version 1.1.\n\nThe original message was received on ${date(i)}\nfrom smtp.${TENANT} [198.51.100.7]\n\n---------------------------------------------------------------------------\n\n                           UNDELIVERABLE MAIL\n\nYour message to the following recipients cannot be delivered:\n\n<${rcpt}>:\n    mx.courier.example [203.0.113.3]:\n>>> RCPT TO:<${rcpt}>\n<<< ${w.reply} ${w.status} ${w.text}\n\n---------------------------------------------------------------------------\n`,
      reportingMta: 'dns; mx.courier.example',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          action: 'failed',
          status: w.status,
          remoteMta: 'dns; mx.courier.example',
          diag: `smtp; ${w.reply} ${w.status} ${w.text}`,
        },
      ],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Lotus Domino / HCL Notes: plain text "was not delivered to: … because:".
source('domino', ['unknown', 'full', 'nodomain'], (why, i) => {
  const rcpt = person('notes.example.com');
  const m = mid();
  const because =
    why === 'unknown'
      ? `User ${rcpt.split('@')[0]} (${rcpt}) not listed in Domino Directory`
      : why === 'full'
        ? `Unable to deliver message: the recipient's mail file is full (maximum size exceeded)`
        : `Host notes.example.com not found`;
  return {
    name: `domino-${why}-${i}`,
    eml: plain({
      from: 'Mail Router <Postmaster@notes.example.com>',
      subject: `DELIVERY FAILURE: ${because}`,
      i,
      body: `Your message\n\n  Subject: ${subj()}\n\nwas not delivered to:\n\n  ${rcpt}\n\nbecause:\n\n  ${because}\n`,
      attach: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, null, why, m),
  };
});

// Novell/Micro Focus GroupWise (GWIA): multipart/report with its own text.
source('groupwise', ['unknown', 'full', 'disabled'], (why, i) => {
  const rcpt = person('gw.example.edu');
  const m = mid();
  const w = WHY[why];
  const said =
    why === 'unknown'
      ? `550 5.1.1 <${rcpt}>... User unknown`
      : why === 'full'
        ? '552 5.2.2 Mailbox is over quota'
        : '550 5.2.1 Account disabled';
  return {
    name: `groupwise-${why}-${i}`,
    eml: dsn({
      from: 'postmaster@gw.example.edu',
      subject: `Mail Delivery Failure: ${subj()}`,
      i,
      human: `The message that you sent was not delivered to the following recipients because of\nthe reasons shown:\n\n  ${rcpt}\n    ${said}\n\nThis is a GroupWise Internet Agent (GWIA) delivery notification.\n`,
      reportingMta: 'dns; gwia.gw.example.edu',
      rcpts: [{ final: `rfc822;${rcpt}`, action: 'failed', status: w.status, diag: `smtp; ${said}` }],
      returned: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Exchange 2003: plain text, "<host #5.1.1 smtp;550 …>", returned message attached.
source('exchange2003', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('corp.example.com');
  const m = mid();
  const w = WHY[why];
  return {
    name: `exchange2003-${why}-${i}`,
    eml: plain({
      from: 'System Administrator <postmaster@corp.example.com>',
      subject: `Undeliverable: ${subj()}`,
      i,
      headers: ['X-MS-Embedded-Report:', 'Thread-Topic: report'],
      body: `Your message did not reach some or all of the intended recipients.\n\n      Subject:\t${subj()}\n      Sent:\t6/14/2025 10:20 AM\n\nThe following recipient(s) cannot be reached:\n\n      ${rcpt} on 6/14/2025 10:21 AM\n            ${why === 'unknown' ? 'The e-mail account does not exist at the organization this message was sent to.' : why === 'full' ? "The recipient's mailbox is full and can't accept messages now." : 'The message was rejected by the content filter.'}\n            <mail.corp.example.com #${w.status} smtp;${w.reply} ${w.status} ${w.text}>\n`,
      attach: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Exchange 2007 and 2010/2013/2016 on-premises: multipart/report, "Delivery has failed to these recipients or …".
for (const [name, sentence, gen] of [
  ['exchange2007', 'Delivery has failed to these recipients or distribution lists:', '2007'],
  ['exchange2013', 'Delivery has failed to these recipients or groups:', '2013'],
] as const) {
  source(name, ['unknown', 'full', 'toobig', 'spam'], (why, i) => {
    const rcpt = person('contoso.example');
    const m = mid();
    const w = WHY[why];
    const code = why === 'unknown' ? '5.1.1' : w.status;
    const remote = why === 'unknown' ? `550 5.1.1 RESOLVER.ADR.RecipNotFound; not found` : `${w.reply} ${code} ${w.text}`;
    return {
      name: `${name}-${why}-${i}`,
      eml: dsn({
        from: `Microsoft Exchange <MAILER-DAEMON@exch${gen}.contoso.example>`,
        subject: `Undeliverable: ${subj()}`,
        i,
        humanType: 'Content-Type: text/plain; charset="us-ascii"',
        human: `${sentence}\n\n${rcpt}\n${why === 'unknown' ? "The e-mail address you entered couldn't be found. Please check the recipient's e-mail address and try to resend the message." : 'A problem occurred during the delivery of this message to this e-mail address.'}\n\n\n\n\n\n\nDiagnostic information for administrators:\n\nGenerating server: EXCH${gen}.contoso.example\n\n${rcpt}\n#${remote} ##\n\nOriginal message headers:\n\nReceived: from smtp.${TENANT} (198.51.100.7) by EXCH${gen}.contoso.example\n`,
        reportingMta: `dns;EXCH${gen}.contoso.example`,
        perMessage: [`Received-From-MTA: dns;smtp.${TENANT}`, `Arrival-Date: ${date(i)}`],
        rcpts: [{ final: `rfc822;${rcpt}`, action: 'failed', status: code, diag: `smtp;${remote}` }],
        returned: original(rcpt, m, subj(), i),
        headers: ['X-MS-Exchange-Message-Is-Ndr:', 'Auto-Submitted: auto-replied', 'Content-Language: en-US'],
      }),
      expected: bounce(rcpt, code, why, m),
    };
  });
}

// Microsoft 365 / Exchange Online, in several languages: the modern NDR ("Your message to … couldn't be delivered").
const O365_TEXT: Record<string, { subj: string; lead: (r: string) => string; lang: string }> = {
  en: { subj: 'Undeliverable', lead: (r) => `Your message to ${r} couldn't be delivered.`, lang: 'en-US' },
  de: { subj: 'Unzustellbar', lead: (r) => `Ihre Nachricht an ${r} konnte nicht übermittelt werden.`, lang: 'de-DE' },
  fr: { subj: 'Non remis', lead: (r) => `Votre message à ${r} n'a pas pu être remis.`, lang: 'fr-FR' },
  es: { subj: 'No se puede entregar', lead: (r) => `Tu mensaje para ${r} no se pudo entregar.`, lang: 'es-ES' },
  pt: { subj: 'Não é possível entregar', lead: (r) => `Sua mensagem para ${r} não pôde ser entregue.`, lang: 'pt-BR' },
  ja: { subj: '配信不能', lead: (r) => `${r} へのメッセージを配信できませんでした。`, lang: 'ja-JP' },
};
const O365_DIAG: Partial<Record<Why, { code: string; text: string }>> = {
  unknown: { code: '5.1.10', text: 'RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' },
  full: { code: '5.2.2', text: 'STOREDRV.Deliver; mailbox full. The recipient mailbox is full and can not accept messages now.' },
  disabled: { code: '5.2.1', text: 'STOREDRV.Deliver: The mailbox is disabled. Mailbox is disabled' },
  relay: { code: '5.7.64', text: 'TenantAttribution; Relay Access Denied' },
  spam: { code: '5.7.708', text: 'Service unavailable. Access denied, traffic not accepted from this IP.' },
  rate: { code: '5.7.1', text: "Your message can't be delivered because the recipient has exceeded its message rate limit" },
  dmarc: {
    code: '5.7.509',
    text: 'Access denied, sending domain acme.example does not pass DMARC verification and has a DMARC policy of reject.',
  },
};
for (const lang of Object.keys(O365_TEXT)) {
  const t = O365_TEXT[lang]!;
  const variants: Why[] = lang === 'en' ? ['unknown', 'full', 'disabled', 'relay', 'spam', 'dmarc'] : ['unknown', 'full', 'disabled'];
  source(lang === 'en' ? 'office365' : `office365-${lang}`, variants, (why, i) => {
    const rcpt = person(lang === 'en' ? 'fabrikam.example' : `firma-${lang}.example`);
    const m = mid();
    const d = O365_DIAG[why]!;
    const reply = d.code === '5.2.2' ? '552' : '550';
    return {
      name: `office365-${lang}-${why}-${i}`,
      eml: dsn({
        from: `Microsoft Outlook <MAILER-DAEMON@${lang}0p${i}mb123.${lang === 'en' ? 'namprd' : 'eurprd'}04.prod.outlook.com>`,
        subject: enc(`${t.subj}: ${subj()}`),
        i,
        humanType: 'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 8bit',
        human: `${t.lead(rcpt)}\n\n\n\nDiagnostic information for administrators:\n\nGenerating server: DM6PR04MB${1000 + i}.namprd04.prod.outlook.com\n\n${rcpt}\nRemote Server returned '${reply} ${d.code} ${d.text}'\n\nOriginal message headers:\n\nReceived: from smtp.${TENANT} (198.51.100.7) by DM6PR04MB${1000 + i}.namprd04.prod.outlook.com\n`,
        humanHtml: `<html><body><p>${t.lead(rcpt)}</p></body></html>`,
        reportingMta: `dns;DM6PR04MB${1000 + i}.namprd04.prod.outlook.com`,
        perMessage: [`Received-From-MTA: dns;smtp.${TENANT}`, `Arrival-Date: ${date(i)}`],
        rcpts: [{ final: `rfc822;${rcpt}`, action: 'failed', status: d.code, diag: `smtp;${reply} ${d.code} ${d.text}` }],
        returned: original(rcpt, m, subj(), i),
        headers: ['X-MS-Exchange-Message-Is-Ndr:', 'Auto-Submitted: auto-replied', `Content-Language: ${t.lang}`],
      }),
      expected: bounce(rcpt, d.code, why, m),
    };
  });
}

// Outlook.com / Hotmail: the consumer service's reports.
source('outlookcom', ['unknown', 'full', 'blocked'], (why, i) => {
  const rcpt = person(pick(['hotmail.com', 'outlook.com', 'live.com']));
  const m = mid();
  const d =
    why === 'unknown'
      ? { code: '5.5.0', text: 'Requested action not taken: mailbox unavailable (S2017062302).' }
      : why === 'full'
        ? { code: '5.2.2', text: 'mailbox full (quota exceeded)' }
        : {
            code: '5.7.1',
            text: "Unfortunately, messages from [198.51.100.7] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140).",
          };
  return {
    name: `outlookcom-${why}-${i}`,
    eml: dsn({
      from: 'postmaster@outlook.com',
      subject: `Undeliverable: ${subj()}`,
      i,
      human: `Delivery has failed to these recipients or groups:\n\n${rcpt}\nThe recipient's mailbox couldn't receive the message.\n\nDiagnostic information for administrators:\n\nGenerating server: BN8NAM12HT123.mail.protection.outlook.com\n\n${rcpt}\nRemote Server returned '550 ${d.code} ${d.text}'\n`,
      reportingMta: 'dns;BN8NAM12HT123.mail.protection.outlook.com',
      rcpts: [{ final: `rfc822;${rcpt}`, action: 'failed', status: d.code, diag: `smtp;550 ${d.code} ${d.text}` }],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
      headers: ['X-MS-Exchange-Message-Is-Ndr:', 'Auto-Submitted: auto-replied'],
    }),
    expected: bounce(rcpt, d.code, why, m),
  };
});

// Gmail (current): multipart/report with "Address not found" texts and HTML.
const GMAIL: Partial<Record<Why, { lead: string; code: string; reply: string; said: string }>> = {
  unknown: {
    lead: "Your message wasn't delivered to {r} because the address couldn't be found, or is unable to receive mail.",
    code: '5.1.1',
    reply: '550',
    said: "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces.",
  },
  full: {
    lead: "Your message couldn't be delivered to {r} because the recipient's inbox is full.",
    code: '5.2.2',
    reply: '552',
    said: "The recipient's inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp",
  },
  disabled: {
    lead: "Your message wasn't delivered to {r} because the account is disabled.",
    code: '5.2.1',
    reply: '550',
    said: 'The email account that you tried to reach is disabled.',
  },
  nodomain: {
    lead: "Your message wasn't delivered to {r} because the domain couldn't be found. Check for typos or unnecessary spaces and try again.",
    code: '5.1.2',
    reply: '',
    said: "DNS Error: DNS type 'mx' lookup of {d} responded with code NXDOMAIN Domain name not found: {d}",
  },
  rate: {
    lead: 'You have reached a limit for sending mail. Your message was not sent.',
    code: '5.4.5',
    reply: '550',
    said: 'Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852',
  },
};
source('gmail', ['unknown', 'full', 'disabled', 'nodomain', 'rate'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `typo-${hex(4)}.example` : 'gmail.com');
  const dom = rcpt.split('@')[1]!;
  const g = GMAIL[why]!;
  const m = mid();
  const said = g.said.replaceAll('{d}', dom);
  const diag = g.reply ? `smtp; ${g.reply}-${g.code} ${said}` : `smtp; ${said}`;
  return {
    name: `gmail-${why}-${i}`,
    eml: dsn({
      from: 'Mail Delivery Subsystem <mailer-daemon@googlemail.com>',
      subject:
        why === 'nodomain' || why === 'unknown' ? 'Delivery Status Notification (Failure)' : 'Delivery Status Notification (Failure)',
      i,
      human: `\n** ${why === 'unknown' ? 'Address not found' : why === 'nodomain' ? 'Address not found' : why === 'full' ? 'Recipient inbox full' : why === 'rate' ? 'You have reached a limit for sending mail' : 'Message not delivered'} **\n\n${g.lead.replace('{r}', rcpt)}\n\nLearn more at https://support.google.com/mail/?p=NoSuchUser\n\nThe response was:\n\n${g.reply ? `${g.reply} ${g.code} ` : ''}${said} ${hex(6)}.${i} - gsmtp\n`,
      humanHtml: `<html><body><p>${g.lead.replace('{r}', rcpt)}</p></body></html>`,
      reportingMta: 'dns; googlemail.com',
      perMessage: [`Received-From-MTA: dns; support@${TENANT}`, `Arrival-Date: ${date(i)}`, `X-Original-Message-ID: ${m}`],
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          action: 'failed',
          status: g.code,
          remoteMta:
            why === 'nodomain' ? undefined : 'dns; gmail-smtp-in.l.google.com. (142.250.27.26, the server for the domain gmail.com.)',
          diag,
          extra: [`Last-Attempt-Date: ${date(i)}`],
        },
      ],
      returned: original(rcpt, m, subj(), i),
      headers: [],
    }),
    expected: bounce(rcpt, g.code, why, m),
  };
});

// Gmail delay notice.
source('gmail-delay', ['delay', 'delay', 'delay'], (_why, i) => {
  const rcpt = person('slow.example');
  const m = mid();
  return {
    name: `gmail-delay-${i}`,
    eml: dsn({
      from: 'Mail Delivery Subsystem <mailer-daemon@googlemail.com>',
      subject: 'Delivery Status Notification (Delay)',
      i,
      human: `\n** Message not delivered yet **\n\nThere was a temporary problem delivering your message to ${rcpt}. Gmail will retry for 46 more hours. You'll be notified if the delivery fails permanently.\n\nThe response was:\n\nThe recipient server did not accept our requests to connect. [mx.slow.example. 203.0.113.70: timed out]\n`,
      reportingMta: 'dns; googlemail.com',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          action: 'delayed',
          status: '4.4.1',
          diag: 'smtp; The recipient server did not accept our requests to connect. [mx.slow.example. 203.0.113.70: timed out]',
          extra: [`Will-Retry-Until: ${date(i + 2)}`],
        },
      ],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
      headers: [],
    }),
    expected: bounce(rcpt, '4.4.1', 'delay', m),
  };
});

// Gmail legacy text (before the multipart report).
source('gmail-legacy', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('example.org');
  const m = mid();
  const w = WHY[why];
  return {
    name: `gmail-legacy-${why}-${i}`,
    eml: plain({
      from: 'Mail Delivery Subsystem <mailer-daemon@googlemail.com>',
      subject: 'Delivery Status Notification (Failure)',
      i,
      body: `Delivery to the following recipient failed permanently:\n\n     ${rcpt}\n\nTechnical details of permanent failure:\nGoogle tried to deliver your message, but it was rejected by the server for the recipient domain example.org by mx.example.org. [203.0.113.5].\n\nThe error that the other server returned was:\n${w.reply} ${w.status} <${rcpt}>: ${w.text}\n\n----- Original message -----\n\n${original(rcpt, m, subj(), i)}`,
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Apple iCloud: Postfix-based reports from its own hosts.
source('icloud', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('icloud.com');
  const m = mid();
  const w = WHY[why];
  const said =
    why === 'unknown'
      ? `550 5.1.1 <${rcpt}>: user does not exist`
      : why === 'full'
        ? '552 5.2.2 <' + rcpt + '>: user is over quota'
        : '554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137';
  return {
    name: `icloud-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon(
        'p00-icloudmta-asmtp-us-west-1a-10-percent-1.p00-icloudmta-asmtp-vip.icloud-mail-production.svc.kube.us-west-1a.k8s.cloud.apple.com',
      ),
      subject: 'Undelivered Mail Returned to Sender',
      i,
      human: `This is the mail system at host mr85p00im-ztdg06021801.me.com.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n\n                   The mail system\n\n<${rcpt}>: host mx01.mail.icloud.com[17.57.152.5] said: ${said} (in reply to RCPT TO command)\n`,
      reportingMta: 'dns; mr85p00im-ztdg06021801.me.com',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          original: `rfc822;${rcpt}`,
          action: 'failed',
          status: w.status,
          remoteMta: 'dns; mx01.mail.icloud.com',
          diag: `smtp; ${said}`,
        },
      ],
      returned: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Yandex: multipart/report with "This is the MAILER-DAEMON, please do not reply to this e-mail."
source('yandex', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('yandex.ru');
  const m = mid();
  const said =
    why === 'unknown'
      ? '550 5.7.1 No such user!'
      : why === 'full'
        ? '552 5.2.2 Mailbox size limit exceeded'
        : '554 5.7.1 [2] Message rejected under suspicion of SPAM; https://ya.cc/1IrBc';
  const status = why === 'full' ? '5.2.2' : '5.7.1';
  return {
    name: `yandex-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('forward100.mail.yandex.net', 'mailer-daemon'),
      subject: 'Undelivered Mail Returned to Sender',
      i,
      human: `This is the MAILER-DAEMON, please do not reply to this e-mail.\n\nAn error has occurred while attempting to deliver a message for\nthe following list of recipients:\n\n${rcpt}: host mx.yandex.ru[77.88.21.249] said: ${said}\n`,
      reportingMta: 'dns; forward100.mail.yandex.net',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          original: `rfc822;${rcpt}`,
          action: 'failed',
          status,
          remoteMta: 'dns; mx.yandex.ru',
          diag: `smtp; ${said}`,
        },
      ],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
    }),
    expected: bounce(rcpt, status, why, m),
  };
});

// Orange (France): bilingual text, returned message attached.
source('orange', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('orange.fr');
  const m = mid();
  const w = WHY[why];
  const fr =
    why === 'unknown'
      ? 'Adresse du destinataire inconnue'
      : why === 'full'
        ? 'Boîte aux lettres du destinataire pleine'
        : 'Message refusé, considéré comme spam';
  return {
    name: `orange-${why}-${i}`,
    eml: plain({
      from: 'Mail Delivery System <MAILER-DAEMON@orange.fr>',
      subject: enc("Votre message n'a pas pu être délivré / Delivery failure"),
      i,
      charset: 'utf-8',
      body: `Votre message n'a pas pu être délivré au(x) destinataire(s) suivant(s) :\nYour message could not be delivered to the following recipient(s):\n\n${rcpt}\n  Raison / Reason: ${fr}\n  ${w.reply} ${w.status} ${w.text}\n\nLe message original est joint. / The original message is attached.\n`,
      attach: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Free (France): Postfix with French text.
source('free', ['unknown', 'full', 'nodomain'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `inexistant-${hex(4)}.fr` : 'free.fr');
  const m = mid();
  const w = WHY[why];
  const status = why === 'nodomain' ? '5.4.4' : w.status;
  const said =
    why === 'nodomain'
      ? `Host or domain name not found. Name service error for name=${rcpt.split('@')[1]} type=A: Host not found`
      : `host mx1.free.fr[212.27.48.6] said: ${w.reply} ${status} <${rcpt}>: ${w.text}`;
  return {
    name: `free-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('smtp.free.fr', 'Serveur de messagerie'),
      subject: enc("Message non remis : retour à l'expéditeur"),
      i,
      humanType: 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit',
      human: `Ceci est le système de messagerie de smtp.free.fr.\n\nJ'ai le regret de vous informer que votre message n'a pas pu\nêtre remis à un ou plusieurs destinataires. Il est joint ci-dessous.\n\n                   Le système de messagerie\n\n<${rcpt}>: ${said}\n`,
      reportingMta: 'dns; smtp.free.fr',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          original: `rfc822;${rcpt}`,
          action: 'failed',
          status,
          diag: why === 'nodomain' ? `X-Postfix; ${said}` : `smtp; ${w.reply} ${status} <${rcpt}>: ${w.text}`,
        },
      ],
      returned: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, status, why, m),
  };
});

// BIGLOBE (Japan): sendmail-like text blocks, returned message attached.
source('biglobe', ['unknown', 'full', 'unknown'], (why, i) => {
  const rcpt = person('biglobe.ne.jp');
  const m = mid();
  const info =
    why === 'unknown' ? 'Mail Delivery Failed... User unknown' : "The number of messages in recipient's mailbox exceeded the local limit.";
  return {
    name: `biglobe-${why}-${i}`,
    eml: plain({
      from: 'postmaster@biglobe.ne.jp',
      subject: 'Returned mail: Delivery failed',
      i,
      body: `This is a MIME-encapsulated message.\n\n   ----- The following addresses had delivery problems -----\n${rcpt}\n\n   ----- Non-delivered information -----\n${info}\n`,
      attach: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, null, why, m),
  };
});

// au by KDDI (ezweb.ne.jp / au.com).
source('kddi', ['unknown', 'full', 'nodomain'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `nai-${hex(4)}.jp` : 'ezweb.ne.jp');
  const m = mid();
  const line =
    why === 'unknown'
      ? 'As their mail address is not registered'
      : why === 'full'
        ? 'As their mailbox is full'
        : 'As the remote domain doesnt exist';
  return {
    name: `kddi-${why}-${i}`,
    eml: plain({
      from: 'MAILER-DAEMON@ezweb.ne.jp',
      subject: 'Mail System Error - Returned Mail',
      i,
      body: `Your mail sent on: ${date(i)}\n     could not be delivered to the following recipients:\n\n${line}, this mail has been returned to you.\n\n     ${rcpt}\n`,
      attach: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, null, why, m),
  };
});

// au (EZweb, older gateway texts).
source('ezweb', ['disabled', 'full', 'unknown'], (why, i) => {
  const rcpt = person('ezweb.ne.jp');
  const m = mid();
  const line =
    why === 'disabled'
      ? 'The user(s) account is disabled.'
      : why === 'full'
        ? 'The user(s) account is temporarily over quota.'
        : 'The following recipients did not receive this message:';
  return {
    name: `ezweb-${why}-${i}`,
    eml: plain({
      from: 'Postmaster <Postmaster@ezweb.ne.jp>',
      subject: 'Mail System Error - Returned Mail',
      i,
      body: `The user(s) account is not available or does not exist.\n\n${line}\n<${rcpt}>\n\nPlease reply to <postmaster@ezweb.ne.jp>\nif you feel this message to be in error.\n`.replace(
        'The user(s) account is not available or does not exist.\n\n',
        why === 'unknown' ? 'The user(s) account is not available or does not exist.\n\n' : '',
      ),
      attach: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, null, why, m),
  };
});

// NTT docomo: sendmail-style reports from docomo.ne.jp, bare 550 replies.
source('docomo', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('docomo.ne.jp');
  const m = mid();
  const said =
    why === 'unknown'
      ? '550 Unknown user ' + rcpt
      : why === 'full'
        ? '552 too much mail data'
        : '550 Message rejected by the recipient settings';
  return {
    name: `docomo-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('smtp.acme.example', 'Mail Delivery Subsystem'),
      subject: 'Returned mail: see transcript for details',
      i,
      human: `The original message was received at ${date(i)}\nfrom smtp.${TENANT} [198.51.100.7]\n\n   ----- The following addresses had permanent fatal errors -----\n<${rcpt}>\n    (reason: ${said})\n\n   ----- Transcript of session follows -----\n... while talking to mfsmax.docomo.ne.jp.:\n>>> DATA\n<<< ${said}\n`,
      reportingMta: 'dns; smtp.acme.example',
      rcpts: [
        { final: `RFC822; ${rcpt}`, action: 'failed', status: '5.0.0', remoteMta: 'DNS; mfsmax.docomo.ne.jp', diag: `SMTP; ${said}` },
      ],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
    }),
    // The report's only code is sendmail's generic 5.0.0.
    expected: bounce(rcpt, '5.0.0', why, m),
  };
});

// Japanese answers: a Postfix with a Japanese bounce template (UTF-8, base64).
source('postfix-ja', ['unknown', 'full', 'nodomain'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `nashi-${hex(4)}.jp` : 'mail.example.jp');
  const m = mid();
  const w = WHY[why];
  const status = why === 'nodomain' ? '5.4.4' : w.status;
  const said =
    why === 'nodomain'
      ? `Host or domain name not found. Name service error for name=${rcpt.split('@')[1]} type=A: Host not found`
      : `host mx.example.jp[203.0.113.80] said: ${w.reply} ${status} <${rcpt}>: ${w.text} (in reply to RCPT TO command)`;
  return {
    name: `postfix-ja-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('mail.example.jp', 'Mail Delivery System'),
      subject: enc('配送エラー: 送信者へ戻されたメール'),
      i,
      humanType: 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64',
      human: b64(
        `このメールは mail.example.jp のメールシステムから自動送信されています。\n\n誠に申し訳ございませんが、お客様のメッセージを以下の宛先に配送することができませんでした。\n元のメッセージを添付します。\n\n                   メールシステム\n\n<${rcpt}>: ${said}\n`,
      ),
      reportingMta: 'dns; mail.example.jp',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          original: `rfc822;${rcpt}`,
          action: 'failed',
          status,
          diag: why === 'nodomain' ? `X-Postfix; ${said}` : `smtp; ${w.reply} ${status} <${rcpt}>: ${w.text}`,
        },
      ],
      returned: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, status, why, m),
  };
});

// German, Spanish and Portuguese answers from Exim/Postfix-style hosts with translated texts (no delivery-status).
const LOCALISED: Record<string, { subject: string; lead: string; copy: string }> = {
  de: {
    subject: 'Unzustellbare Nachricht: Rücksendung an den Absender',
    lead: 'Diese Nachricht wurde automatisch vom Mailsystem erstellt.\n\nEine von Ihnen gesendete Nachricht konnte nicht an alle Empfänger zugestellt werden.\nDies ist ein permanenter Fehler. Folgende Adresse(n) schlugen fehl:',
    copy: '------ Dies ist eine Kopie der Nachricht einschließlich aller Header. ------',
  },
  es: {
    subject: 'Error en la entrega del correo: devolviendo el mensaje al remitente',
    lead: 'Este mensaje fue creado automáticamente por el sistema de correo.\n\nNo se ha podido entregar un mensaje que usted envió a uno o más destinatarios.\nEs un error permanente. Fallaron las siguientes direcciones:',
    copy: '------ Esta es una copia del mensaje, incluidos todos los encabezados. ------',
  },
  pt: {
    subject: 'Falha na entrega da mensagem: devolvendo ao remetente',
    lead: 'Esta mensagem foi criada automaticamente pelo sistema de entrega de e-mail.\n\nNão foi possível entregar a mensagem que você enviou a um ou mais destinatários.\nEste é um erro permanente. Os seguintes endereços falharam:',
    copy: '------ Esta é uma cópia da mensagem, incluindo todos os cabeçalhos. ------',
  },
};
for (const lang of Object.keys(LOCALISED)) {
  const t = LOCALISED[lang]!;
  source(`exim-${lang}`, ['unknown', 'full', 'spam'], (why, i) => {
    const rcpt = person(`post-${lang}.example`);
    const m = mid();
    const w = WHY[why];
    return {
      name: `exim-${lang}-${why}-${i}`,
      eml: plain({
        from: mailerDaemon(`mail.post-${lang}.example`),
        subject: enc(t.subject),
        i,
        charset: 'utf-8',
        headers: [`X-Failed-Recipients: ${rcpt}`, 'Auto-Submitted: auto-replied'],
        body: `${t.lead}\n\n  ${rcpt}\n    host mx.post-${lang}.example [203.0.113.90]\n    SMTP error from remote mail server after RCPT TO:<${rcpt}>:\n    ${w.reply} ${w.status} ${w.text}\n\n${t.copy}\n\n${original(rcpt, m, subj(), i)}`,
      }),
      expected: bounce(rcpt, w.status, why, m),
    };
  });
}

// Symantec.cloud (MessageLabs): multipart/report from messagelabs.com.
source('messagelabs', ['unknown', 'spam', 'relay'], (why, i) => {
  const rcpt = person('client.example');
  const m = mid();
  const w = WHY[why];
  const said = why === 'unknown' ? `550 5.1.1 <${rcpt}>... No such user` : `${w.reply} ${w.status} ${w.text}`;
  return {
    name: `messagelabs-${why}-${i}`,
    eml: dsn({
      from: 'MAILER-DAEMON@messagelabs.com',
      subject: 'Mail Delivery Failure',
      i,
      human: `This is an automatically generated message from the MessageLabs Email Security service.\n\nYour message could not be delivered to the following recipient:\n\n${rcpt}\nReason: ${said}\n`,
      reportingMta: 'dns; server-12.tower-a.messagelabs.com',
      rcpts: [
        { final: `RFC822; ${rcpt}`, action: 'failed', status: w.status, diag: `SMTP; ${said}`, extra: [`Last-Attempt-Date: ${date(i)}`] },
      ],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Barracuda Email Security Gateway.
source('barracuda', ['unknown', 'spam', 'toobig'], (why, i) => {
  const rcpt = person('bcd.example');
  const m = mid();
  const w = WHY[why];
  const said =
    why === 'unknown'
      ? `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in local recipient table`
      : why === 'spam'
        ? '554 5.7.1 Message blocked as spam by Barracuda Email Security Gateway'
        : `552 5.3.4 Message size exceeds fixed maximum message size`;
  return {
    name: `barracuda-${why}-${i}`,
    eml: dsn({
      from: 'Barracuda Email Security Service <MAILER-DAEMON@barracuda.bcd.example>',
      subject: `Undelivered Mail Returned to Sender`,
      i,
      human: `Your message to ${rcpt} could not be delivered.\n\nReason: ${said}\n\nThis is the Barracuda Email Security Gateway at barracuda.bcd.example.\n`,
      reportingMta: 'dns; barracuda.bcd.example',
      rcpts: [{ final: `rfc822; ${rcpt}`, original: `rfc822;${rcpt}`, action: 'failed', status: w.status, diag: `smtp; ${said}` }],
      returned: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Mimecast.
source('mimecast', ['unknown', 'spam', 'blocked'], (why, i) => {
  const rcpt = person('mc.example');
  const m = mid();
  const said =
    why === 'unknown'
      ? '550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [a1B2c3D4e5F6g7H8i9J0.uk17]'
      : why === 'spam'
        ? '554 Email rejected due to security policies - https://community.mimecast.com/docs/DOC-1369#554'
        : '550 Rejected by header based Blocked Senders - block policy for Header From - https://community.mimecast.com/docs/DOC-1369#550';
  const status = '5.0.0';
  return {
    name: `mimecast-${why}-${i}`,
    eml: dsn({
      from: 'Mimecast Postmaster <postmaster@mimecast.example>',
      subject: `Failure Notice: ${subj()}`,
      i,
      human: `Your message couldn't be delivered to the recipients shown below.\n\nRecipient: ${rcpt}\nReason: ${said}\n\nThis notice was generated by the Mimecast email security service.\n`,
      reportingMta: 'dns; eu-smtp-1.mimecast.com',
      rcpts: [{ final: `rfc822;${rcpt}`, action: 'failed', status, diag: `smtp; ${said}` }],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
    }),
    expected: bounce(rcpt, null, why, m),
  };
});

// Amazon SES: the report it sends the envelope sender.
source('amazonses', ['unknown', 'full', 'spam', 'nodomain'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `nx-${hex(4)}.example` : 'example.io');
  const m = mid();
  const w = WHY[why];
  const status = why === 'nodomain' ? '5.4.4' : w.status;
  const said =
    why === 'nodomain'
      ? `Amazon SES did not send the message to this address because it is on the suppression list for your account... no MX record: unable to lookup DNS for ${rcpt.split('@')[1]}`
      : `${w.reply} ${status} ${w.text}`;
  return {
    name: `amazonses-${why}-${i}`,
    eml: dsn({
      from: 'MAILER-DAEMON@amazonses.com',
      subject: 'Delivery Status Notification (Failure)',
      i,
      human: `An error occurred while trying to deliver the mail to the following recipients:\n${rcpt}\n`,
      reportingMta: 'dns; a8-30.smtp-out.amazonses.com',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          action: 'failed',
          status,
          remoteMta: why === 'nodomain' ? undefined : 'dns; mx.example.io',
          diag: `smtp; ${said}`,
        },
      ],
      returned: original(rcpt, m, subj(), i),
      headers: ['X-SES-Outgoing: 2025.06.14-54.240.8.30', 'Feedback-ID: 1.us-east-1.abcdef:AmazonSES'],
    }),
    expected: bounce(rcpt, status, why, m),
  };
});

// SendGrid: its own text plus a delivery-status part.
source('sendgrid', ['unknown', 'full', 'blocked'], (why, i) => {
  const rcpt = person('example.co');
  const m = mid();
  const w = WHY[why];
  return {
    name: `sendgrid-${why}-${i}`,
    eml: dsn({
      from: 'MAILER-DAEMON <bounces@sendgrid.net>',
      subject: 'Undelivered Mail Returned to Sender',
      i,
      human: `This is an automatically generated message from SendGrid.\n\nI'm sorry to have to tell you that your message was not able to be\ndelivered to one of its intended recipients.\n\nIf you require assistance with this, please contact SendGrid support.\n\n${rcpt}: ${w.reply} ${w.status} ${w.text}\n`,
      reportingMta: 'dns; sendgrid.net',
      rcpts: [
        {
          final: `rfc822; ${rcpt}`,
          original: `rfc822;${rcpt}`,
          action: 'failed',
          status: w.status,
          diag: `smtp; ${w.reply} ${w.status} ${w.text}`,
        },
      ],
      returned: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// Mailgun.
source('mailgun', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('example.dev');
  const m = mid();
  const w = WHY[why];
  return {
    name: `mailgun-${why}-${i}`,
    eml: dsn({
      from: 'Mail Delivery Subsystem <mailer-daemon@mailgun.org>',
      subject: 'Delivery Status Notification (Failure)',
      i,
      human: `Delivery to the following recipient failed permanently:\n\n    ${rcpt}\n\nTechnical details of permanent failure:\nThe recipient server rejected the message: ${w.reply} ${w.status} ${w.text}\n`,
      reportingMta: 'dns; mxa.mailgun.org',
      rcpts: [{ final: `rfc822; ${rcpt}`, action: 'failed', status: w.status, diag: `smtp; ${w.reply} ${w.status} ${w.text}` }],
      returned: original(rcpt, m, subj(), i, true),
      returnedType: 'text/rfc822-headers',
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// MDaemon: plain text with a session transcript.
source('mdaemon', ['unknown', 'full', 'spam'], (why, i) => {
  const rcpt = person('md.example');
  const m = mid();
  const w = WHY[why];
  return {
    name: `mdaemon-${why}-${i}`,
    eml: plain({
      from: 'MDaemon@md.example',
      subject: 'Permanent Delivery Failure',
      i,
      headers: ['X-MDaemon-Deliver-To: support@acme.example', 'X-MDDSN-Message: Yes'],
      body: `The attached message had PERMANENT fatal delivery errors!\n\nAfter one or more unsuccessful delivery attempts the attached message has\nbeen removed from the mail queue on this server.\n\nYOU DO NOT NEED TO RESEND THIS MESSAGE.\n\n--- Session Transcript ---\n Sat 2025-06-14 10:29:59: Attempting SMTP connection to [mx.md.example : 25]\n Sat 2025-06-14 10:29:59: --> RCPT To:<${rcpt}>\n Sat 2025-06-14 10:29:59: <-- ${w.reply} ${w.status} ${w.text}\n--- End Transcript ---\n`,
      attach: original(rcpt, m, subj(), i),
    }),
    expected: bounce(rcpt, w.status, why, m),
  };
});

// OpenSMTPD: "Hi!  This is the MAILER-DAEMON, please DO NOT REPLY to this email."
source('opensmtpd', ['unknown', 'full', 'nodomain'], (why, i) => {
  const rcpt = person(why === 'nodomain' ? `void-${hex(4)}.example` : 'openbsd.example');
  const m = mid();
  const w = WHY[why];
  const said = why === 'nodomain' ? 'Domain does not exist' : `${w.reply} ${w.status} ${w.text}`;
  return {
    name: `opensmtpd-${why}-${i}`,
    eml: plain({
      from: 'Mailer Daemon <MAILER-DAEMON@smtpd.acme.example>',
      subject: 'Delivery status notification: error',
      i,
      body: `Hi!\n\nThis is the MAILER-DAEMON, please DO NOT REPLY to this email.\n\n    An error has occurred while attempting to deliver a message for\n    the following list of recipients:\n\n${rcpt}: ${said}\n\n    Below is a copy of the original message:\n\n${original(rcpt, m, subj(), i)}`,
    }),
    expected: bounce(rcpt, why === 'nodomain' ? null : w.status, why, m),
  };
});

// RFC 3464 reports whose Final-Recipient is missing or not the address we wrote to.
source('dsn-final-recipient', ['unknown', 'full', 'unknown', 'unknown', 'disabled'], (why, i) => {
  const rcpt = person('alias.example');
  const m = mid();
  const w = WHY[why];
  // 0: no Final-Recipient at all; 1: internal mailbox in Final-Recipient, the address in Original-Recipient;
  // 2: Final-Recipient without an address type; 3: Final-Recipient names a forwarding target, no Original-Recipient;
  // 4: Final-Recipient with a local part only.
  const mode = i % 5;
  const internal = `${rcpt.split('@')[0]}@mailstore${i}.internal.alias.example`;
  const r: DsnRecipient =
    mode === 0
      ? { final: null, action: 'failed', status: w.status, diag: `smtp; ${w.reply} ${w.status} <${rcpt}>: ${w.text}` }
      : mode === 1
        ? {
            final: `rfc822; ${internal}`,
            original: `rfc822;${rcpt}`,
            action: 'failed',
            status: w.status,
            diag: `smtp; ${w.reply} ${w.status} ${w.text}`,
          }
        : mode === 2
          ? { final: `<${rcpt}>`, action: 'failed', status: w.status, diag: `smtp; ${w.reply} ${w.status} ${w.text}` }
          : mode === 3
            ? {
                final: `rfc822; ${internal}`,
                action: 'failed',
                status: w.status,
                diag: `smtp; ${w.reply} ${w.status} <${internal}>: ${w.text}`,
                extra: [`X-Actual-Recipient: rfc822; ${internal}`],
              }
            : { final: `LOCAL; ${rcpt.split('@')[0]}`, action: 'failed', status: w.status, diag: `smtp; ${w.reply} ${w.status} ${w.text}` };
  return {
    name: `dsn-final-recipient-${mode}-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('mx.alias.example'),
      subject: 'Undelivered Mail Returned to Sender',
      i,
      human: `This is the mail system at host mx.alias.example.\n\nYour message could not be delivered to one or more recipients.\n\n<${rcpt}>: ${w.text}\n`,
      reportingMta: 'dns; mx.alias.example',
      rcpts: [r],
      returned: original(rcpt, m, subj(), i),
    }),
    // We wrote to rcpt; that is the address whose fate the notice tells.
    expected: bounce(rcpt, w.status, why, m),
  };
});

// RFC 3464 reports with several recipients, some failed and some delayed.
source('dsn-multi', ['unknown', 'full', 'unknown'], (why, i) => {
  const a = person('multi.example');
  const b = person('multi.example');
  const m = mid();
  const w = WHY[why];
  return {
    name: `dsn-multi-${why}-${i}`,
    eml: dsn({
      from: mailerDaemon('mx.multi.example'),
      subject: 'Undelivered Mail Returned to Sender',
      i,
      human: `This is the mail system at host mx.multi.example.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n<${a}>: ${w.text}\n<${b}>: ${WHY.unknown.text}\n`,
      reportingMta: 'dns; mx.multi.example',
      rcpts: [
        {
          final: `rfc822; ${a}`,
          original: `rfc822;${a}`,
          action: 'failed',
          status: w.status,
          diag: `smtp; ${w.reply} ${w.status} ${w.text}`,
        },
        { final: `rfc822; ${b}`, original: `rfc822;${b}`, action: 'failed', status: '5.1.1', diag: `smtp; 550 5.1.1 ${WHY.unknown.text}` },
      ],
      returned: original(a, m, subj(), i),
    }),
    expected: {
      kind: 'bounce',
      bounces: [
        { recipient: a, status: w.status, hard: w.hard },
        { recipient: b, status: '5.1.1', hard: true },
      ],
      originalMessageId: m,
    },
  };
});

// ARF complaints (RFC 5965) as Yahoo, AOL, Microsoft JMRP, Amazon SES and a generic provider send them.
const ARF = [
  { name: 'yahoo', from: 'feedback@arf.mail.yahoo.com', ua: 'Yahoo!-Mail-Feedback/2.0', redact: false },
  { name: 'aol', from: 'scomp@aol.net', ua: 'AOL SComp', redact: true },
  { name: 'microsoft-jmrp', from: 'staff@hotmail.com', ua: 'Microsoft JMRP', redact: false },
  { name: 'amazonses', from: 'complaints@email-abuse.amazonses.com', ua: 'Amazon SES Feedback', redact: false },
  { name: 'generic', from: 'abuse@isp.example', ua: 'SomeGenerator/1.0', redact: true },
];
source('arf', ['spam', 'spam', 'spam', 'spam', 'spam'], (_why, i) => {
  const a = ARF[i % ARF.length]!;
  const rcpt = person(`${a.name}.example`);
  const m = mid();
  const bd = `arf_${hex(8)}`;
  const returned = original(rcpt, m, subj(), i);
  const eml = [
    `From: ${a.from}`,
    `To: fbl@${TENANT}`,
    `Subject: FW: ${subj()}`,
    `Date: ${date(i)}`,
    `Message-ID: <${hex(16)}@${a.from.split('@')[1]}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${bd}"`,
    '',
    `--${bd}`,
    'Content-Type: text/plain; charset="US-ASCII"',
    'Content-Transfer-Encoding: 7bit',
    '',
    `This is an email abuse report for an email message received from IP 198.51.100.7 on ${date(i)}.`,
    'For more information about this format please see http://www.mipassoc.org/arf/.',
    '',
    `--${bd}`,
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    `User-Agent: ${a.ua}`,
    'Version: 1',
    `Original-Mail-From: <support@${TENANT}>`,
    ...(a.redact ? [] : [`Original-Rcpt-To: <${rcpt}>`]),
    `Arrival-Date: ${date(i)}`,
    'Source-IP: 198.51.100.7',
    `Reported-Domain: ${TENANT}`,
    '',
    `--${bd}`,
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    returned,
    `--${bd}--`,
    '',
  ].join('\n');
  return {
    name: `arf-${a.name}-${i}`,
    eml,
    expected: { kind: 'complaint', bounces: [{ recipient: rcpt, status: null, hard: true }], originalMessageId: m },
  };
});

// Auto-replies (RFC 3834 and the usual vacation notices), several languages.
const AUTO = [
  {
    lang: 'en',
    subject: 'Automatic reply: {s}',
    body: 'I am out of the office until June 23 with limited access to email. For urgent matters please contact my colleague.',
    headers: ['Auto-Submitted: auto-replied', 'X-Auto-Response-Suppress: All'],
  },
  {
    lang: 'de',
    subject: 'Abwesenheitsnotiz: {s}',
    body: 'Vielen Dank für Ihre Nachricht. Ich bin bis zum 23. Juni nicht im Büro und habe keinen Zugriff auf meine E-Mails.',
    headers: ['Auto-Submitted: auto-replied'],
  },
  {
    lang: 'fr',
    subject: 'Réponse automatique : {s}',
    body: "Je suis absent du bureau jusqu'au 23 juin. Votre message ne sera pas transféré.",
    headers: ['Auto-Submitted: auto-replied', 'Precedence: auto_reply'],
  },
  {
    lang: 'es',
    subject: 'Respuesta automática: {s}',
    body: 'Me encuentro fuera de la oficina hasta el 23 de junio con acceso limitado al correo.',
    headers: ['X-Autoreply: yes'],
  },
  {
    lang: 'pt',
    subject: 'Resposta automática: {s}',
    body: 'Estou fora do escritório até 23 de junho, com acesso limitado ao e-mail.',
    headers: ['Auto-Submitted: auto-replied'],
  },
  {
    lang: 'ja',
    subject: '自動応答: {s}',
    body: 'ただいま休暇中のため、6月23日までご返信できません。',
    headers: ['Auto-Submitted: auto-replied'],
  },
  {
    lang: 'vacation',
    subject: 'Away from my mail',
    body: 'I will not be reading my mail for a while. Your mail regarding your order will be read when I return.',
    headers: ['Precedence: bulk', 'X-Autorespond: vacation'],
  },
];
source('autoreply', ['full', 'full', 'full', 'full', 'full', 'full', 'full'], (_why, i) => {
  const a = AUTO[i % AUTO.length]!;
  const sender = person(`${a.lang}.example`);
  const m = mid();
  return {
    name: `autoreply-${a.lang}-${i}`,
    eml: plain({
      from: `<${sender}>`,
      subject: enc(a.subject.replace('{s}', subj())),
      i,
      charset: 'utf-8',
      base64: a.lang === 'ja',
      headers: [`In-Reply-To: ${m}`, `References: ${m}`, ...a.headers],
      body: `${a.body}\n`,
    }),
    expected: { kind: 'autoreply', bounces: [], originalMessageId: m },
  };
});

// Not bounces: human replies, and a delivered/relayed success notice.
source('other', ['full', 'full', 'full', 'full'], (_why, i) => {
  const sender = person('customer.example');
  const m = mid();
  if (i % 4 === 3) {
    const rcpt = person('relay.example');
    return {
      name: `other-dsn-relayed-${i}`,
      eml: dsn({
        from: mailerDaemon('relay.example'),
        subject: 'Successful Mail Delivery Report',
        i,
        human: `This is the mail system at host relay.example.\n\nYour message was successfully delivered to the destination(s)\nlisted below.\n\n<${rcpt}>: delivery via mx.relay.example[203.0.113.4]:25: 250 2.0.0 Ok: queued as 4F1A2\n`,
        reportingMta: 'dns; relay.example',
        rcpts: [
          {
            final: `rfc822; ${rcpt}`,
            original: `rfc822;${rcpt}`,
            action: 'relayed',
            status: '2.0.0',
            diag: 'smtp; 250 2.0.0 Ok: queued as 4F1A2',
          },
        ],
        returned: original(rcpt, m, subj(), i, true),
        returnedType: 'text/rfc822-headers',
      }),
      expected: { kind: 'autoreply', bounces: [], originalMessageId: m },
    };
  }
  const bodies = [
    'Thanks, that fixed it. One more question: can I change the delivery address for the next order?',
    'Hi, I never received the invoice you mention. Could you send it again?\n\nOn Sat, Acme Support wrote:\n> Your request has been updated.',
    'Bonjour, merci pour votre réponse rapide. Cordialement.',
  ];
  return {
    name: `other-human-${i}`,
    eml: plain({
      from: `Customer <${sender}>`,
      subject: `Re: ${subj()}`,
      i,
      charset: 'utf-8',
      headers: [`In-Reply-To: ${m}`, `References: ${m}`],
      body: `${bodies[i % bodies.length]!}\n`,
    }),
    expected: { kind: 'human', bounces: [], originalMessageId: m },
  };
});

// ---------------------------------------------------------------------------------------------------------------
function main(): void {
  const root = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'bounces');
  for (const name of Object.keys(S)) rmSync(path.join(root, name), { recursive: true, force: true });
  const expected: Record<string, ExpectedVerdict> = {};
  let n = 0;
  for (const [name, s] of Object.entries(S)) {
    mkdirSync(path.join(root, name), { recursive: true });
    s.variants.forEach((why, idx) => {
      const sample = s.make(why, idx);
      const file = `${name}/${sample.name}.eml`;
      writeFileSync(path.join(root, file), sample.eml);
      expected[file] = sample.expected;
      n++;
    });
  }
  writeFileSync(path.join(root, 'expected.json'), `${JSON.stringify(expected, null, 1)}\n`);
  process.stdout.write(`bounce corpus: ${n} files from ${Object.keys(S).length} sources -> ${root}\n`);
}

main();
