/**
 * Adversarial inputs for the parsers that read untrusted mail (issue 12): the shapes that made one or another of them
 * quadratic, each generated at any size so that tests can compare the work at size x and 2x.
 */

/** `unit` repeated to exactly `n` characters. */
export const fill = (unit: string, n: number): string => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);

/** Numbered lines (`line(i)`) up to `n` characters. */
export function numberedLines(n: number, line: (i: number) => string): string {
  const out: string[] = [];
  let length = 0;
  for (let i = 0; length < n; i++) {
    const l = line(i);
    out.push(l);
    length += l.length;
  }
  return out.join('').slice(0, n);
}

/** The shapes issue 12 names: a body of line breaks, of dashes, of spaces, one single line. */
export const SHAPES: Record<string, (n: number) => string> = {
  CRLFs: (n) => fill('\r\n', n),
  dashes: (n) => fill('-', n),
  spaces: (n) => fill(' ', n),
  'one line': (n) => fill('a', n),
};

/** Shapes aimed at what was quadratic before issue 12 (each named after what it hit). */
export const TARGETED: Record<string, (n: number) => string> = {
  // SMTP transcripts: [^>]+ ran to the next '>' from every command, [^\n]* to the end of the line.
  'RCPT commands, unclosed': (n) => fill('-->RCPT TO:<', n),
  'RCPT commands on one line': (n) => fill('-->RCPT TO:<a@b.example>', n),
  // Exchange/Gmail recipient lists: the rest of the section was rebuilt and rescanned per address line.
  'address lines': (n) => numberedLines(n, (i) => `  u${i}@example.com\n`),
  'angle address lines': (n) => numberedLines(n, (i) => `<u${i}@example.com>:\n`),
  // Exchange diagnostics: ([^>]*)> from every `<… #5.0.0` head.
  'Exchange status heads': (n) => numberedLines(n, (i) => `u${i}@example.com <x #5.0.0 `),
  // Sendmail: the (reason: …) pattern ran to the end of the line from every `(reason:`.
  'sendmail reasons': (n) => `a@b.example\n${fill('(reason:x)', n)}`,
  'blank-ish lines': (n) => fill(' \r\n', n),
  'header fields': (n) => fill('a: b\n', n),
  'folded lines': (n) => fill(' x\n', n),
  'dash lines': (n) => fill('--\r\n', n),
};

/** Diagnostic texts where /A.*B/ was quadratic in reasons.ts (a line of As). */
export const DIAGNOSTIC_SHAPES: Record<string, (n: number) => string> = {
  'ip ': (n) => fill('ip ', n),
  'host ': (n) => fill('host ', n),
  'client host ': (n) => fill('client host ', n),
  'mail from ': (n) => fill('mail from ', n),
};

/** The sentence each plain-text NDR format is recognised by, with the start of its recipient section. */
export const NDR_PREFIXES: Record<string, string> = {
  qmail: "Hi. This is the qmail-send program at x.example.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n",
  yahoo: 'Sorry, we were unable to deliver your message to the following address.\n\n',
  courier: 'Your message to the following recipients cannot be delivered:\n\n',
  postfix: 'This is the mail system at host x.example.\n\nThe mail system\n\n',
  exim: 'This message was created automatically by mail delivery software.\n\nThe following address(es) failed:\n\n',
  sendmail: '----- The following addresses had permanent fatal errors -----\n',
  gmail: 'Delivery to the following recipient failed permanently:\n\n',
  exchange: 'Delivery has failed to these recipients or groups:\n\n',
  domino: 'Your message was not delivered to: a@b.example because: ',
  mdaemon: 'The attached message had PERMANENT fatal delivery errors!\n\n',
};

const CRLF = '\r\n';

/** A bounce-looking message (so every classifier rule runs) whose body is `body`. */
export function bounceMime(body: string, messageId: string, extraHeaders = ''): string {
  return (
    `From: Mail Delivery System <MAILER-DAEMON@mx.example>${CRLF}To: a@acme.example${CRLF}Subject: Undelivered Mail Returned to Sender${CRLF}` +
    `Message-ID: <${messageId}>${CRLF}Date: Mon, 1 Jun 2026 10:00:00 +0000${CRLF}${extraHeaders}${CRLF}${body}`
  );
}

/** `depth` multiparts nested in each other, a text part in the middle. */
export function nestedMime(depth: number, messageId: string): string {
  let open = '';
  let close = '';
  for (let i = 1; i < depth; i++) {
    open += `--b${i - 1}${CRLF}Content-Type: multipart/mixed; boundary="b${i}"${CRLF}${CRLF}`;
    close = `${CRLF}--b${i}--${close}`;
  }
  const inner = `--b${depth - 1}${CRLF}Content-Type: text/plain${CRLF}${CRLF}hello`;
  return bounceMime(
    `${open}${inner}${close}${CRLF}--b0--${CRLF}`,
    messageId,
    `MIME-Version: 1.0${CRLF}Content-Type: multipart/mixed; boundary="b0"${CRLF}`,
  );
}

/** `count` header lines before the body. */
export function manyHeadersMime(count: number, messageId: string): string {
  return bounceMime('body', messageId, Array.from({ length: count }, (_, i) => `X-Hostile-${i}: value ${i}${CRLF}`).join(''));
}

/** `count` links in an HTML body. */
export const linksHtml = (count: number): string =>
  `<html><body>${Array.from({ length: count }, (_, i) => `<a href="https://shop.example/p/${i % 97}">item ${i}</a> `).join('')}</body></html>`;

/** A multipart/report whose delivery-status part is `status`. */
export function reportMime(status: string, messageId: string): string {
  const b = 'REPORT-BOUNDARY';
  return bounceMime(
    `--${b}${CRLF}Content-Type: text/plain${CRLF}${CRLF}Your message could not be delivered.${CRLF}` +
      `--${b}${CRLF}Content-Type: message/delivery-status${CRLF}${CRLF}${status}${CRLF}--${b}--${CRLF}`,
    messageId,
    `MIME-Version: 1.0${CRLF}Content-Type: multipart/report; report-type=delivery-status; boundary="${b}"${CRLF}`,
  );
}
