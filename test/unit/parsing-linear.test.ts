import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseFeedbackReport } from '../../src/domain/mail/arf';
import { autoReplyRule } from '../../src/domain/mail/autoreply';
import { classifyMail, type MailForClassification } from '../../src/domain/mail/classify';
import { parseDeliveryStatus } from '../../src/domain/mail/dsn';
import { headerFields } from '../../src/domain/mail/fields';
import { parseTextNdr } from '../../src/domain/mail/ndr-text';
import { outcomeFor } from '../../src/domain/mail/reasons';
import { messageCreateSchema } from '../../src/domain/message';
import { HtmlTooDeepError, MAX_HTML_DEPTH, rewriteHtml } from '../../src/domain/tracking/rewrite';
import { fromRawMime, mailFromRaw } from '../../src/inbound/mime';
import {
  bounceMime,
  DIAGNOSTIC_SHAPES,
  fill,
  linksHtml,
  manyHeadersMime,
  NDR_PREFIXES,
  nestedMime,
  reportMime,
  SHAPES,
  TARGETED,
} from '../support/hostile';
import { assertLinear, growthSizes } from '../support/work-growth';

/**
 * Issue 12: every parser that reads untrusted mail does work linear in what it reads. Each is fed the adversarial
 * shapes at sizes x to 16x and the work (CPU time, see test/support/work-growth.ts) may grow at most 3x per
 * doubling. Before the fix, the NDR transcript and recipient-list parsers, the reason rules, the HTML link rewrite
 * and others grew 4-10x per doubling (docs/bounces.md "Windows and linear parsing").
 */
const KB = 1024;
const SIZES = growthSizes([32 * KB, 64 * KB, 128 * KB, 256 * KB, 512 * KB]);
const MIME_SIZES = SIZES;
const ALL_SHAPES = { ...SHAPES, ...TARGETED };

const INBOUND_LIMITS = { maxAttachmentBytes: 10 * 1024 * 1024, maxMimeParts: 500 };

const bounceMail = (text: string, over: Partial<MailForClassification> = {}): MailForClassification => ({
  headers: [{ name: 'From', value: 'MAILER-DAEMON@mx.example' }],
  subject: 'Undelivered Mail Returned to Sender',
  from: 'MAILER-DAEMON@mx.example',
  text,
  html: null,
  parts: [],
  ...over,
});

describe('plain-text NDR parser: linear in the text for every format and shape', () => {
  for (const [format, prefix] of Object.entries(NDR_PREFIXES)) {
    test(`ndr ${format}`, async () => {
      for (const [shape, make] of Object.entries(ALL_SHAPES)) {
        await assertLinear(`parseTextNdr ${format} / ${shape}`, SIZES, (n) => prefix + make(n), parseTextNdr);
      }
    });
  }
  test('ndr transcripts after a format signature: RCPT lines answered on the next line still parse', () => {
    const r = parseTextNdr(
      `${NDR_PREFIXES.mdaemon}--> RCPT TO:<a@b.example> -->RCPT TO:<x\n12:00 <-- 550 5.1.1 no such user\n--> RCPT TO:<c@d.example>\n<<< 451 4.2.0 try later`,
    );
    assert.deepEqual(
      r?.bounces.map((b) => [b.recipient, b.diagnostic]),
      [
        ['a@b.example', '550 5.1.1 no such user'],
        ['c@d.example', '451 4.2.0 try later'],
      ],
    );
  });
});

describe('report parsers: linear', () => {
  test('delivery-status (RFC 3464)', async () => {
    for (const [shape, make] of Object.entries(ALL_SHAPES)) {
      await assertLinear(`parseDeliveryStatus / ${shape}`, SIZES, make, parseDeliveryStatus);
      await assertLinear(
        `parseDeliveryStatus Final-Recipient + ${shape}`,
        SIZES,
        (n) => `Final-Recipient: rfc822; a@b.example\nAction: failed\nDiagnostic-Code: smtp; ${make(n)}`,
        parseDeliveryStatus,
      );
    }
  });
  test('feedback reports (ARF) and returned headers', async () => {
    for (const [shape, make] of Object.entries(ALL_SHAPES)) {
      await assertLinear(`parseFeedbackReport / ${shape}`, SIZES, make, (t) => parseFeedbackReport(t, t));
      await assertLinear(`headerFields / ${shape}`, SIZES, make, headerFields);
    }
  });
  test('auto-reply detection', async () => {
    for (const [shape, make] of Object.entries(ALL_SHAPES)) {
      await assertLinear(`autoReplyRule / ${shape}`, SIZES, make, (t) => autoReplyRule({ headers: [], subject: t, text: t }));
    }
  });
  test('diagnostic reason rules: "A, later on the line B" is tried once per line', async () => {
    for (const [shape, make] of Object.entries({ ...DIAGNOSTIC_SHAPES, ...SHAPES })) {
      await assertLinear(`outcomeFor / ${shape}`, SIZES, make, (t) => outcomeFor({ status: null, diagnostic: t, failed: true }));
    }
    // The rules still read what they read before.
    const reason = (d: string) => outcomeFor({ status: null, diagnostic: d, failed: true }).reason;
    assert.equal(reason('554 client host [203.0.113.9] rejected'), 'blocked');
    assert.equal(reason('550 your ip 203.0.113.9 is on our list, mail blockedx'), 'blocked');
    assert.equal(reason('553 mail from <a@b.example> refused'), 'rejected');
    assert.equal(reason('553 mail from <a@b.example>\nrefused'), 'policyviolation');
  });
});

describe('classifyMail: linear, and bounded by its window', () => {
  test('text bodies of every shape', async () => {
    for (const [shape, make] of Object.entries(ALL_SHAPES)) {
      await assertLinear(`classifyMail text / ${shape}`, SIZES, (n) => bounceMail(make(n)), classifyMail);
    }
  });
  test('report parts, headers and X-Failed-Recipients of every shape', async () => {
    for (const [shape, make] of Object.entries(ALL_SHAPES)) {
      const parts = (n: number) => [
        { contentType: 'message/delivery-status', filename: null, content: Buffer.from(make(n)) },
        { contentType: 'message/rfc822', filename: null, content: Buffer.from(make(n)) },
      ];
      await assertLinear(`classifyMail parts / ${shape}`, SIZES, (n) => bounceMail('', { parts: parts(n) }), classifyMail);
      await assertLinear(
        `classifyMail headers / ${shape}`,
        SIZES,
        (n) =>
          bounceMail('', {
            subject: make(n),
            from: make(n),
            headers: [
              { name: 'X-Failed-Recipients', value: make(n) },
              { name: 'Content-Type', value: `multipart/report; report-type=${make(n)}` },
            ],
          }),
        classifyMail,
      );
    }
  });
  test('many headers and parts', async () => {
    await assertLinear(
      'classifyMail header count',
      SIZES,
      (n) => bounceMail('x', { headers: Array.from({ length: n / 16 }, (_, i) => ({ name: `X-H${i}`, value: 'v' })) }),
      classifyMail,
    );
    await assertLinear(
      'classifyMail part count',
      SIZES,
      (n) =>
        bounceMail('x', {
          parts: Array.from({ length: n / 64 }, () => ({ contentType: 'image/png', filename: 'a.png', content: Buffer.alloc(8) })),
        }),
      classifyMail,
    );
  });
  test('past its window, a larger message costs no more: the verdict reads the head of the text', () => {
    const mdaemon = `${NDR_PREFIXES.mdaemon}--> RCPT TO:<a@b.example>\n<-- 550 5.1.1 no such user\n`;
    const small = classifyMail(bounceMail(mdaemon));
    const huge = classifyMail(bounceMail(mdaemon + fill('-->RCPT TO:<', 4 * 1024 * 1024)));
    assert.equal(small.rule, 'ndr-mdaemon');
    assert.deepEqual(huge, small);
  });
});

describe('tracking rewrite: one pass over the HTML, nesting capped', () => {
  const opts = { opens: true, clicks: true, clickUrl: (i: number) => `https://t.example/c/${i}`, openUrl: () => 'https://t.example/o' };
  const rewrite = (html: string) => {
    try {
      return rewriteHtml(html, opts);
    } catch (err) {
      if (err instanceof HtmlTooDeepError) return err;
      throw err;
    }
  };
  test('10k links are linear', async () => {
    await assertLinear('rewriteHtml links', [1250, 2500, 5000, 10_000, 20_000], linksHtml, rewrite);
    const r = rewriteHtml(linksHtml(10_000), opts);
    assert.equal(r.links.length, 97);
    assert.equal(r.html.match(/href="https:\/\/t\.example\/c\/\d+"/g)?.length, 10_000);
  });
  test('markup that made the tree construction quadratic', async () => {
    const shapes: Record<string, (n: number) => string> = {
      ...SHAPES,
      'nested divs': (n) => fill('<div>', n),
      'misnested formatting': (n) => fill('<b><div>x</b>', n),
      'foster-parented rows': (n) => `<table>${fill('<tr><div>x', n)}`,
      'closed divs below 500 open ones': (n) => '<div>'.repeat(500) + fill('<div></div>', n),
      'unclosed links': (n) => fill('<a href="https://a.example/">', n),
    };
    for (const [shape, make] of Object.entries(shapes)) await assertLinear(`rewriteHtml / ${shape}`, SIZES, make, rewrite);
  });
  test(`nesting deeper than ${MAX_HTML_DEPTH} is refused, not parsed on`, () => {
    assert.ok(rewrite('<div>'.repeat(10_000)) instanceof HtmlTooDeepError);
    assert.ok(rewrite('<template><div>'.repeat(400)) instanceof HtmlTooDeepError);
    const ok = rewriteHtml(`${'<div>'.repeat(MAX_HTML_DEPTH - 10)}<a href="https://x.example/">x</a>`, opts);
    assert.deepEqual(ok.links, ['https://x.example/']);
  });
});

describe('attachment base64 check (POST /v1/messages): linear and cheap', () => {
  const message = (contentBase64: string) => ({
    from: 'a@acme.example',
    to: ['b@customer.example'],
    subject: 'x',
    text: 'x',
    attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', contentBase64 }],
  });
  const valid = (s: string) => messageCreateSchema.safeParse(message(s)).success;
  test('multi-MB inputs of every shape', async () => {
    const shapes = {
      ...SHAPES,
      'base64 lines': (n: number) => fill('QUFBQUFB\r\n', n),
      'base64 lines, then a bad character': (n: number) => `${fill('QUFBQUFB\r\n', n)}!`,
      'padding, then blank lines': (n: number) => `QQ==${fill(' \r\n', n)}`,
    };
    for (const [shape, make] of Object.entries(shapes)) {
      await assertLinear(
        `base64 / ${shape}`,
        [1024 * KB, 2048 * KB, 4096 * KB],
        (n) => message(make(n)),
        (m) => messageCreateSchema.safeParse(m),
      );
    }
  });
  test('accepts exactly what the former pattern accepted', () => {
    const former = /^[A-Z0-9+/\r\n]*(?:(?:={1,2}|[^\S\r\n])\s*)?$/i;
    const alphabet = ['Q', 'z', '9', '+', '/', '=', ' ', '\t', '\r', '\n', '!', '\u00a0', '-'];
    let seed = 12;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      const s = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
      assert.equal(valid(s), former.test(s), JSON.stringify(s));
    }
  });
});

describe('fromRawMime and mailFromRaw (parse pool): linear in the message', () => {
  let n = 0;
  const id = () => `hostile-${n++}@mx.example`;
  const messages: Record<string, (size: number) => string> = {
    ...Object.fromEntries(Object.entries(SHAPES).map(([shape, make]) => [shape, (size: number) => bounceMime(make(size), id())])),
    'RCPT commands': (size) => bounceMime(NDR_PREFIXES.mdaemon + TARGETED['RCPT commands, unclosed']!(size), id()),
    'a delivery-status part of blank lines': (size) => reportMime(fill('\r\n', size), id()),
    'nested multiparts': (size) => nestedMime(Math.round(size / 512), id()),
    'header lines': (size) => manyHeadersMime(Math.round(size / 64), id()),
    'HTML links': (size) => bounceMime(linksHtml(Math.round(size / 64)), id(), 'Content-Type: text/html\r\n'),
  };
  test('every shape', async () => {
    for (const [shape, make] of Object.entries(messages)) {
      const raw = (size: number) => Buffer.from(make(size));
      await assertLinear(`fromRawMime / ${shape}`, MIME_SIZES, raw, (r) =>
        fromRawMime(r, 'mime', INBOUND_LIMITS).catch((err: Error) => err),
      );
      await assertLinear(`mailFromRaw / ${shape}`, MIME_SIZES, raw, (r) => mailFromRaw(r).catch((err: Error) => err));
    }
  });
});

describe('1 MB of each hostile shape through every parser', () => {
  test('each one answers', async () => {
    const MB = 1024 * KB;
    for (const [shape, make] of Object.entries(ALL_SHAPES)) {
      const text = make(MB);
      for (const prefix of Object.values(NDR_PREFIXES)) parseTextNdr(prefix + text);
      parseDeliveryStatus(text);
      parseFeedbackReport(text, text);
      autoReplyRule({ headers: [], subject: text, text });
      outcomeFor({ status: null, diagnostic: text, failed: true });
      const verdict = classifyMail(
        bounceMail(text, { parts: [{ contentType: 'message/delivery-status', filename: null, content: Buffer.from(text) }] }),
      );
      assert.ok(verdict.kind, shape);
      try {
        rewriteHtml(text, { opens: true, clicks: true, clickUrl: () => 'https://t.example/c', openUrl: () => 'https://t.example/o' });
      } catch (err) {
        // `<u0@example.com>:` lines are unclosed elements to an HTML parser: refused past the depth cap.
        assert.ok(err instanceof HtmlTooDeepError, shape);
      }
      messageCreateSchema.safeParse({
        from: 'a@acme.example',
        to: ['b@c.example'],
        subject: 'x',
        text: 'x',
        attachments: [{ filename: 'a', contentType: 'a/b', contentBase64: text }],
      });
      const mail = await mailFromRaw(Buffer.from(bounceMime(text, `one-mb-${shape.length}@mx.example`))).catch((err: Error) => err);
      if (!(mail instanceof Error)) assert.equal(typeof classifyMail(mail).kind, 'string');
    }
    // 500 nested multiparts, 10k header lines, 10k links.
    await fromRawMime(Buffer.from(nestedMime(500, 'nested@mx.example')), 'mime', { ...INBOUND_LIMITS, maxMimeParts: 1000 });
    await assert.rejects(
      fromRawMime(Buffer.from(nestedMime(500, 'nested@mx.example')), 'mime', { ...INBOUND_LIMITS, maxMimeParts: 100 }),
      /invalid \(body\)/,
    );
    await fromRawMime(Buffer.from(manyHeadersMime(10_000, 'headers@mx.example')), 'mime', INBOUND_LIMITS).catch((err: Error) =>
      assert.match(err.message, /invalid \(body\)/),
    );
    const links = await fromRawMime(
      Buffer.from(bounceMime(linksHtml(10_000), 'links@mx.example', 'Content-Type: text/html\r\n')),
      'mime',
      INBOUND_LIMITS,
    );
    assert.ok(links.html?.includes('item 9999'));
  });
});
