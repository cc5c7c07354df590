import { addressIn } from './fields';
import { outcomeFor, type Bounce } from './reasons';

/**
 * Non-standard (plain-text) bounce formats. Each format is recognised by the fixed sentence its MTA
 * writes (docs/bounces.md quotes them) and yields its recipients with their diagnostics. Used only
 * when there is no machine-readable message/delivery-status part.
 */
export interface TextNdr {
  format: string;
  delay: boolean;
  bounces: Bounce[];
}

interface Format {
  name: string;
  signature: RegExp;
  /** The notice is a delay warning, not a failure. */
  delay?: RegExp;
  extract(body: string): Array<{ recipient: string; diagnostic: string | null }>;
}

const NL = /\r\n?/g;
// The domain is taken whole (the lookahead), so it cannot trade characters with the free text after it.
const ADDRESS_LINE = /^\s*<?[^\s<>@]+@[^\s<>@:]+(?![^\s<>@:])>?:?\s*(?:\S.*)?$/;
const COPY_MARKER =
  /^\s*-{2}.*(?:below this line|copy of the (?:original )?message|original message|this is a copy)|^\s*(?:return-path|received):/i;

/** Text between `start` (a regex over the whole body) and the returned copy. */
function section(body: string, start: RegExp): string[] {
  const m = start.exec(body);
  if (!m) return [];
  const lines = body.slice(m.index + m[0].length).split('\n');
  const end = lines.findIndex((l) => COPY_MARKER.test(l));
  return end < 0 ? lines : lines.slice(0, end);
}

const clean = (lines: string[]): string | null => {
  const t = lines
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  return t || null;
};

/** Phrases that introduce the remote server's own words in a diagnostic. */
const REPLY_INTRO =
  /remote (?:host|server) (?:said|returned)|the error that the other server returned was|the response (?:from the remote server )?was|<<<|<--/gi;
const LINE_BREAK = /[\n\r\u2028\u2029]/g;
const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);

/**
 * The most telling part of a diagnostic: the remote server's reply when it is quoted. Spelled out rather than
 * /(?:intro)\s*:?\s*'?(.+?)'?$/i, which backtracks polynomially on attacker-written text, with the same result:
 * the first intro with text after it on its line, leading blanks, colon and quote dropped, and a closing quote.
 */
function remoteReply(diag: string | null): string | null {
  if (!diag) return null;
  let lastBreak = -1;
  for (const b of diag.matchAll(LINE_BREAK)) lastBreak = b.index;
  const intro = new RegExp(REPLY_INTRO);
  for (let m = intro.exec(diag); m; intro.lastIndex = m.index + 1, m = intro.exec(diag)) {
    let i = m.index + m[0].length;
    if (i === diag.length) continue;
    while (isSpace(diag[i])) i++;
    if (diag[i] === ':') {
      i++;
      while (isSpace(diag[i])) i++;
    }
    if (diag[i] === "'") i++;
    // The reply is at least one character: when the blanks, colon or quote took everything, the last one is it.
    if (i === diag.length) i--;
    if (lastBreak >= i) continue;
    const reply = diag.length - i > 1 && diag.endsWith("'") ? diag.slice(i, -1) : diag.slice(i);
    return reply.trim() || diag;
  }
  return diag;
}

/**
 * A sentence without its trailing whitespace and full stop, as `(.+?)\.?\s*$` would capture it (never empty),
 * without that pattern's backtracking between `.+?` and `\s*`.
 */
function withoutFinalStop(text: string): string {
  const t = text.trimEnd();
  if (t === '') return text.slice(0, 1);
  return t.length > 1 && t.endsWith('.') ? t.slice(0, -1) : t;
}

/**
 * `<address>:` followed by indented or plain diagnostic lines up to a blank line: qmail, Yahoo,
 * Postfix's human-readable part, Courier.
 */
function angleBlocks(lines: string[]): Array<{ recipient: string; diagnostic: string | null }> {
  const out: Array<{ recipient: string; diagnostic: string | null }> = [];
  let current: { recipient: string; lines: string[] } | null = null;
  const flush = () => {
    // qmail closes each block with "Giving up on <host>.", which says nothing about the failure.
    if (current)
      out.push({
        recipient: current.recipient,
        diagnostic: remoteReply(clean(current.lines.filter((l) => !/^\s*giving up on /i.test(l)))),
      });
    current = null;
  };
  for (const line of lines) {
    const m = /^<([^\s<>][^\s<>@]*@[^\s<>]+)>:?\s*(\S.*)?$/.exec(line.trim());
    if (m?.[1]) {
      flush();
      current = { recipient: m[1].toLowerCase(), lines: m[2] ? [m[2]] : [] };
    } else if (line.trim() === '') {
      if (current && current.lines.length) flush();
    } else if (current) {
      current.lines.push(line);
    }
  }
  flush();
  return out;
}

const SENDMAIL_REASON = /\(reason:\s*(\S.*?|\s)\)\s*$/y;

/**
 * `(reason: 550 5.1.1 User unknown)` closing a line. Tried from the first `(reason:` only: unanchored, the pattern
 * ran to the end of the line from every `(reason:` in it.
 */
function sendmailReason(line: string): string | null {
  const at = line.indexOf('(reason:');
  if (at < 0) return null;
  const re = new RegExp(SENDMAIL_REASON);
  re.lastIndex = at;
  return re.exec(line)?.[1] ?? null;
}

/** Exim: two-space indented addresses, their diagnostic indented further below each. */
function indentedBlocks(lines: string[]): Array<{ recipient: string; diagnostic: string | null }> {
  const out: Array<{ recipient: string; lines: string[] }> = [];
  for (const line of lines) {
    const addr = /^ {1,3}(\S[^\s@]*@\S+)(?:\s*$|\s+<)/.exec(line) ?? /^ {1,3}(\S[^\s@]*@\S+)\s*$/.exec(line);
    if (addr?.[1] && !/^\s{4}/.test(line)) {
      const recipient = addressIn(addr[1]);
      if (recipient) out.push({ recipient, lines: [] });
    } else if (/^\s{4,}\S/.test(line) && out.length) {
      out[out.length - 1]?.lines.push(line);
    }
  }
  return out.map((b) => ({ recipient: b.recipient, diagnostic: clean(b.lines) }));
}

/** A diagnostic found in a text: where it starts and what it says. */
interface Found {
  index: number;
  value: string;
}

/**
 * A diagnostic search over one text: the first diagnostic that starts at or after `from`. Built once per text so
 * that it can remember what it scanned; every search in this file must be linear in the text it reads.
 */
type DiagnosticSearch = (text: string) => (from: number) => Found | null;

/** The search a regex makes: its first capture group that took part, else the whole match. */
function regexSearch(pattern: RegExp): DiagnosticSearch {
  return (text) => {
    const re = new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`);
    return (from) => {
      re.lastIndex = from;
      const m = re.exec(text);
      return m ? { index: m.index, value: m.slice(1).find((g) => g !== undefined) ?? m[0] } : null;
    };
  };
}

/**
 * Addresses listed in a section, each with the first diagnostic that follows it. The search for "the first
 * diagnostic after this line" is asked once per address line, so it is remembered: a found diagnostic also answers
 * every later line before it, and none found answers all of them (rebuilding and rescanning the rest of the section
 * per line made a list of addresses quadratic).
 */
function listedWith(lines: string[], diagnostic: DiagnosticSearch): Array<{ recipient: string; diagnostic: string | null }> {
  const out: Array<{ recipient: string; diagnostic: string | null }> = [];
  const seen = new Set<string>();
  const search = diagnostic(lines.join('\n'));
  let last: { from: number; found: Found | null } | null = null;
  const firstFrom = (from: number): Found | null => {
    if (!last || (last.found !== null && last.found.index < from)) last = { from, found: search(from) };
    return last.found;
  };
  let offset = 0;
  for (const line of lines) {
    const at = offset;
    offset += line.length + 1;
    const recipient = addressIn(line);
    if (!recipient || seen.has(recipient) || /^\s*(?:from|to|subject|sent|date)\s*:/i.test(line)) continue;
    if (out.length && diagnostic(line)(0)) continue;
    seen.add(recipient);
    const d = firstFrom(at);
    out.push({ recipient, diagnostic: d ? d.value.replace(/\s+/g, ' ').trim() : null });
  }
  return out;
}

const EXCHANGE_REPLY = /Remote Server returned '([^']+)'|<[^<>#]*#[245]\.\d+\.\d+\s+(?!\s)(?:smtp;)?/gi;
const EXCHANGE_REMOTE = /Remote Server returned '([^']+)'/gi;

/**
 * Exchange's diagnostics, as /Remote Server returned '([^']+)'|<[^<>#]*#[245]\.\d+\.\d+\s+(?!\s)(?:smtp;)?([^>]*)>/i
 * finds them: the `([^>]*)>` tail, tried from every `<… #5.x.x` head, rescanned the text to its next `>` once per
 * head. Here the next `>` is looked up once and remembered, and once there is none, only the first form is sought.
 */
const exchangeDiagnostic: DiagnosticSearch = (text) => {
  let gt: { from: number; at: number } | null = null;
  const nextGt = (from: number): number => {
    if (!gt || from < gt.from || (gt.at >= 0 && gt.at < from)) gt = { from, at: text.indexOf('>', from) };
    return gt.at;
  };
  return (from) => {
    const re = new RegExp(EXCHANGE_REPLY);
    re.lastIndex = from;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m[1] !== undefined) return { index: m.index, value: m[1] };
      const close = nextGt(re.lastIndex);
      if (close >= 0) return { index: m.index, value: text.slice(re.lastIndex, close) };
      const remote = new RegExp(EXCHANGE_REMOTE);
      remote.lastIndex = m.index + 1;
      const r = remote.exec(text);
      return r?.[1] === undefined ? null : { index: r.index, value: r[1] };
    }
    return null;
  };
};

const FORMATS: Format[] = [
  {
    name: 'qmail',
    signature: /this is the qmail-send program|I'm afraid I wasn't able to deliver your message to the following addresses/i,
    extract: (b) => angleBlocks(section(b, /to the following addresses[^\n]*\n/i)),
  },
  {
    name: 'yahoo',
    signature: /Sorry, we were unable to deliver your message to the following address/i,
    extract: (b) => angleBlocks(section(b, /to the following address[^\n]*\n/i)),
  },
  {
    name: 'courier',
    signature: /Your message to the following recipients cannot be delivered/i,
    delay: /has not been delivered to the following recipients|will continue trying/i,
    extract: (b) => angleBlocks(section(b, /(?:cannot be delivered|has not been delivered)[^\n]*\n/i)),
  },
  {
    name: 'postfix',
    signature: /This is the mail system at host|^The mail system\s*$/im,
    delay: /This is a delivery status notification, NOT a delivery failure|Delayed Mail \(still being retried\)|will be retried/i,
    extract: (b) => angleBlocks(section(b, /^The mail system\s*$/im)),
  },
  {
    name: 'exim',
    signature: /This message was created automatically by mail delivery software/i,
    delay: /has not yet been delivered to one or more of its\s+recipients/i,
    extract: (b) =>
      indentedBlocks(
        section(
          b,
          /(?:The following address\(es\) failed|address(?:es)? to which the message has not yet been delivered (?:is|are))[^\n]*\n/i,
        ),
      ),
  },
  {
    name: 'sendmail',
    signature: /-{3} The following addresses had (?:permanent fatal|transient non-fatal) errors -{3}/i,
    delay: /transient non-fatal errors|Warning: could not send message for past/i,
    extract: (b) =>
      section(b, /The following addresses had (?:permanent fatal|transient non-fatal) errors -+\n/i)
        .join('\n')
        .split(/\n\s*\n/)[0]!
        .split('\n')
        .map((l, i, all) => {
          const recipient = addressIn(l);
          if (!recipient || /reason:/i.test(l)) return null;
          return { recipient, diagnostic: sendmailReason(all[i + 1] ?? '') };
        })
        .filter((x): x is { recipient: string; diagnostic: string | null } => x !== null),
  },
  {
    name: 'gmail',
    signature:
      /Delivery to the following recipients? (failed permanently|has been delayed)|Your message wasn't delivered to|There was a temporary problem delivering your message to/i,
    delay: /has been delayed|temporary problem delivering|will retry for/i,
    extract: (b) => {
      const wasnt = /Your message wasn't delivered to (\S[^\s@]*@\S+) because (.+)$/im.exec(b);
      const modern = wasnt ?? /temporary problem delivering your message to (\S[^\s@]*@\S+?)\.?\s/i.exec(b);
      const remote =
        /(?:The (?:error that the other server returned|response from the remote server) was|The response was):[^\S\n]*\n\s*(.+)/i
          .exec(b)?.[1]
          ?.trim() ?? null;
      if (modern?.[1])
        return [
          {
            recipient: addressIn(modern[1]) ?? modern[1],
            diagnostic: remote ?? (wasnt?.[2] === undefined ? null : withoutFinalStop(wasnt[2])),
          },
        ];
      return listedWith(
        section(b, /Delivery to the following recipients? (?:failed permanently|has been delayed):/i),
        regexSearch(/(?:returned was|response was):[^\S\n]*\n\s*(.+)/i),
      ).map((r) => ({
        recipient: r.recipient,
        diagnostic: r.diagnostic ?? remote,
      }));
    },
  },
  {
    name: 'exchange',
    signature:
      /Delivery has failed to these recipients or groups|Delivery is delayed to these recipients or groups|The following recipient\(s\) (cannot|could not) be reached|Your message did not reach some or all of the intended recipients/i,
    delay: /Delivery is delayed to these recipients or groups/i,
    extract: (b) =>
      listedWith(
        section(
          b,
          /(?:Delivery has failed to these recipients or groups|Delivery is delayed to these recipients or groups|The following recipient\(s\) (?:cannot|could not) be reached):?/i,
        ).filter((l) => !/^\s*(?:generating server|original message headers)/i.test(l)),
        exchangeDiagnostic,
      ),
  },
  {
    name: 'domino',
    signature: /was not delivered to:\s+\S[^\s@]*@\S+\s+because:/i,
    extract: (b) => {
      const m = /was not delivered to:\s+(\S[^\s@]*@\S+)\s+because:\s*(.+)/i.exec(b);
      return m?.[1] ? [{ recipient: addressIn(m[1]) ?? m[1], diagnostic: m[2]?.trim() ?? null }] : [];
    },
  },
  {
    // DragonFly Mail Agent (dma): one recipient per notice, the remote reply lines after "did not like our ...:".
    name: 'dragonfly',
    signature: /This is the DragonFly Mail Agent\b/i,
    extract: (b) => {
      const m = /There was an error delivering your mail to <([^<>\s]{1,320})>/i.exec(b);
      if (!m?.[1]) return [];
      const rest = b.slice(m.index, m.index + 8_000);
      const end = rest.search(/^Message headers follow/im);
      const reply = (end >= 0 ? rest.slice(0, end) : rest)
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => /^[45]\d\d[ -]/.test(l));
      return [{ recipient: addressIn(m[1]) ?? m[1], diagnostic: reply.length ? reply.join(' ') : null }];
    },
  },
  {
    name: 'mdaemon',
    signature: /The attached message had PERMANENT fatal delivery errors/i,
    extract: (b) => transcript(b),
  },
];

const RCPT_COMMAND = /(?:>>>|-->)\s*RCPT TO:\s*<([^<>]+)>/gi;
const REPLY_MARK = /<<<|<--/g;
const REPLY_AFTER_MARK = /\s*([45]\d\d[^\n]*)/y;

/**
 * SMTP session transcripts: `>>> RCPT TO:<a@b>` / `--> RCPT To:<a@b>`, then on the next line the server's reply
 * after `<<<` / `<--`. MDaemon prefixes each transcript line with a timestamp, hence the free text before the reply.
 * What /(?:>>>|-->)\s*RCPT TO:\s*<([^>]+)>[^\n]*\n[^\n]*?(?:<<<|<--)\s*([45]\d\d[^\n]*)/gi finds, without its
 * rescans: `[^>]+` ran to the text's next `>` from every command, and `[^\n]*` to the end of the line, so a line of
 * commands was quadratic. An address never holds `<`; the reply line is read once per line, not once per command.
 */
function transcript(body: string): Array<{ recipient: string; diagnostic: string | null }> {
  const out: Array<{ recipient: string; diagnostic: string | null }> = [];
  const command = new RegExp(RCPT_COMMAND);
  let readLine = -1;
  let reply: { text: string; end: number } | null = null;
  for (let m = command.exec(body); m; m = command.exec(body)) {
    const eol = body.indexOf('\n', command.lastIndex);
    if (eol < 0) break;
    if (eol !== readLine) {
      readLine = eol;
      reply = replyOnLine(body, eol + 1);
    }
    if (m[1] && reply) {
      out.push({ recipient: m[1].toLowerCase(), diagnostic: reply.text.trim() });
      command.lastIndex = reply.end;
    }
  }
  return out;
}

/** The first `<<<` / `<--` on the line starting at `start` that a 4xx/5xx reply follows (perhaps on a later line). */
function replyOnLine(body: string, start: number): { text: string; end: number } | null {
  const next = body.indexOf('\n', start);
  const line = body.slice(start, next < 0 ? body.length : next);
  const mark = new RegExp(REPLY_MARK);
  const after = new RegExp(REPLY_AFTER_MARK);
  for (let k = mark.exec(line); k; mark.lastIndex = k.index + 1, k = mark.exec(line)) {
    after.lastIndex = start + k.index + k[0].length;
    const r = after.exec(body);
    if (r?.[1] !== undefined) return { text: r[1], end: after.lastIndex };
  }
  return null;
}

export function parseTextNdr(text: string): TextNdr | null {
  const body = text.replace(NL, '\n');
  for (const format of FORMATS) {
    if (!format.signature.test(body)) continue;
    const delay = format.delay?.test(body) ?? false;
    const found = format.extract(body);
    const listed = found.length ? found : transcript(body);
    const unique = new Map<string, string | null>();
    for (const r of listed) if (ADDRESS_LINE.test(r.recipient) && !unique.has(r.recipient)) unique.set(r.recipient, r.diagnostic);
    const bounces = [...unique].map(([recipient, diagnostic]) => {
      const o = outcomeFor({ status: null, diagnostic, failed: !delay });
      return { recipient, status: o.status, hard: o.hard, reason: o.reason, diagnostic };
    });
    return { format: format.name, delay, bounces };
  }
  return null;
}
