import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthenticationError, ValidationError } from '../../src/errors';
import { brevoGate, parseBrevo } from '../../src/inbound/providers/brevo';
import { mailgunGate, parseMailgun } from '../../src/inbound/providers/mailgun';
import { mimeGate, parseMime } from '../../src/inbound/providers/mime';
import { parsePostmark, postmarkGate } from '../../src/inbound/providers/postmark';
import { parseSendgrid, sendgridGate } from '../../src/inbound/providers/sendgrid';
import { parseSes, sesGate } from '../../src/inbound/providers/ses';
import type { AdapterContext, AdapterResult, InboundRequest } from '../../src/inbound/request';
import { SnsVerifier } from '../../src/inbound/sns';
import type { OpenInboundSettings } from '../../src/store/inbound';
import { CERT_URL, mailgunSigned, makeSnsSigner, multipart, replyMime, sesReceived, snsEnvelope, TOPIC } from '../support/inbound-fixtures';

/**
 * Each provider's adapter against a request built as that provider's documentation shows it, and
 * its gate (src/inbound/request.ts ProviderGate): enabled only with its authentication configured,
 * header credentials checked before any body is read.
 */
const signer = makeSnsSigner();
let certFetches = 0;
const sns = new SnsVerifier(async (url) => {
  certFetches++;
  if (url !== CERT_URL) throw new Error(`unexpected certificate URL ${url}`);
  return signer.cert;
});

function ctx(settings: OpenInboundSettings, over: Partial<AdapterContext> = {}): AdapterContext {
  return {
    tenantId: 'acme',
    settings,
    limits: { maxAttachmentBytes: 1024, maxMimeParts: 50, mailgunMaxAgeMs: 15 * 60_000 },
    now: new Date(),
    sns,
    brevoAttachment: async () => Buffer.from('%PDF-1.4 brevo attachment'),
    ...over,
  };
}
const json = (body: unknown, headers: Record<string, string> = {}): InboundRequest => ({
  headers: { 'content-type': 'application/json', ...headers },
  body: Buffer.from(JSON.stringify(body)),
});
const basicAuth = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
const emails = (r: AdapterResult) => {
  assert.equal(r.kind, 'emails');
  return r.kind === 'emails' ? r.emails : [];
};

describe('brevo', () => {
  // The documented sample, with the quirks seen in real traffic: Uuid array, SpamScore, Headers arrays.
  const payload = {
    items: [
      {
        Uuid: ['b7e1a5d2-1d44-4ec6-a8a8-1b7d4f1c0a01'],
        MessageId: '<CAF=reply1@mail.gmail.com>',
        InReplyTo: '<abc123DEF456ghi.cartero@acme.example>',
        From: { Name: 'Alice', Address: 'alice@customer.example' },
        To: [{ Name: null, Address: 'replies@reply.acme.example' }],
        Cc: null,
        ReplyTo: null,
        SentAtDate: 'Mon, 23 Nov 2026 10:00:00 +0000',
        Subject: 'Re: Your case #42',
        Attachments: [
          { Name: 'invoice.pdf', ContentType: 'application/pdf', ContentLength: 25, ContentID: null, DownloadToken: 'dl-token-1' },
        ],
        Headers: {
          Received: ['from a by b', 'from c by d'],
          'Message-ID': '<CAF=reply1@mail.gmail.com>',
          References: '<root@acme.example> <abc123DEF456ghi.cartero@acme.example>',
        },
        SpamScore: 0.4,
        ExtractedMarkdownMessage: 'Thanks!',
        RawHtmlBody: '<p>Thanks!</p>',
        RawTextBody: 'Thanks!\n> quoted',
      },
      {
        Uuid: 'b7e1a5d2-1d44-4ec6-a8a8-1b7d4f1c0a02',
        MessageId: '<second@mail.example>',
        From: { Name: 'Bob', Address: 'bob@customer.example' },
        To: [{ Name: null, Address: 'replies@reply.acme.example' }],
        Subject: 'Hello',
        Recipients: ['replies@reply.acme.example'],
        Spam: { Score: 1.5 },
        RawTextBody: 'hi',
      },
    ],
  };

  test('several items, threading headers from fields and Headers, attachment fetched with the API key', async () => {
    const got = emails(await parseBrevo(json(payload), ctx({ apiKey: 'xkeysib-1' })));
    assert.equal(got.length, 2);
    const [a, b] = got as [NonNullable<(typeof got)[0]>, NonNullable<(typeof got)[1]>];
    assert.equal(a.messageId, '<CAF=reply1@mail.gmail.com>');
    assert.deepEqual(a.inReplyTo, ['<abc123DEF456ghi.cartero@acme.example>']);
    assert.deepEqual(a.references, ['<root@acme.example>', '<abc123DEF456ghi.cartero@acme.example>']);
    assert.equal(a.providerId, 'b7e1a5d2-1d44-4ec6-a8a8-1b7d4f1c0a01');
    assert.equal(a.from?.address, 'alice@customer.example');
    assert.equal(a.spamScore, 0.4);
    assert.equal(a.headers.filter((h) => h.name === 'Received').length, 2);
    assert.equal(a.parts[0]?.filename, 'invoice.pdf');
    assert.equal(a.parts[0]?.content.toString(), '%PDF-1.4 brevo attachment');
    assert.equal(b.spamScore, 1.5);
    assert.deepEqual(b.envelopeTo, ['replies@reply.acme.example']);
  });

  test('without an API key the attachment is dropped with the reason', async () => {
    const [a] = emails(await parseBrevo(json(payload), ctx({})));
    assert.equal(a?.parts.length, 0);
    assert.match(a?.dropped[0]?.reason ?? '', /no Brevo API key/);
  });

  test('enabled only with basic auth or a bearer token; the configured one is required and checked from the headers', () => {
    assert.equal(brevoGate.enabled({}), false);
    assert.equal(brevoGate.enabled({ apiKey: 'xkeysib-1' }), false, 'an attachment API key authenticates nothing');
    assert.equal(brevoGate.enabled({ bearerToken: 'brevo-secret-123456' }), true);
    assert.equal(brevoGate.enabled({ username: 'b', password: 'brevo-pass' }), true);
    const bearer = { bearerToken: 'brevo-secret-123456' };
    assert.throws(() => brevoGate.checkHead({ headers: {} }, bearer), AuthenticationError);
    assert.throws(() => brevoGate.checkHead({ headers: { authorization: 'Bearer wrong-secret-0000000' } }, bearer), AuthenticationError);
    brevoGate.checkHead({ headers: { authorization: 'Bearer brevo-secret-123456' } }, bearer);
    const basic = { username: 'b', password: 'brevo-pass' };
    assert.throws(() => brevoGate.checkHead({ headers: basicAuth('b', 'nope') }, basic), AuthenticationError);
    brevoGate.checkHead({ headers: basicAuth('b', 'brevo-pass') }, basic);
  });

  test('malformed: no items → 400 naming the field', async () => {
    await assert.rejects(
      parseBrevo(json({ item: [] }), ctx({})),
      (e: unknown) => e instanceof ValidationError && e.fields.some((f) => f.field === 'items'),
    );
    await assert.rejects(parseBrevo({ headers: {}, body: Buffer.from('{not json') }, ctx({})), ValidationError);
  });
});

describe('postmark', () => {
  const payload = {
    FromName: 'Alice',
    MessageStream: 'inbound',
    From: 'alice@customer.example',
    FromFull: { Email: 'alice@customer.example', Name: 'Alice', MailboxHash: '' },
    To: '"Support" <support+abc@inbound.postmarkapp.com>',
    ToFull: [{ Email: 'support+abc@inbound.postmarkapp.com', Name: 'Support', MailboxHash: 'abc' }],
    Cc: '',
    CcFull: [],
    OriginalRecipient: 'support+abc@inbound.postmarkapp.com',
    Subject: 'Re: Your case #42',
    MessageID: '22c74902-a0c1-4511-804f-341342852c90',
    ReplyTo: '',
    MailboxHash: 'abc',
    Date: 'Mon, 23 Nov 2026 10:00:00 +0000',
    TextBody: 'Thanks',
    HtmlBody: '<p>Thanks</p>',
    StrippedTextReply: 'Thanks',
    Tag: '',
    Headers: [
      { Name: 'X-Spam-Status', Value: 'No' },
      { Name: 'Message-ID', Value: '<CAF=pm1@mail.gmail.com>' },
      { Name: 'In-Reply-To', Value: '<abc123DEF456ghi.cartero@acme.example>' },
      { Name: 'References', Value: '<abc123DEF456ghi.cartero@acme.example>' },
    ],
    Attachments: [
      { Name: 'small.txt', Content: Buffer.from('hello').toString('base64'), ContentType: 'text/plain', ContentLength: 5, ContentID: '' },
      {
        Name: 'big.bin',
        Content: Buffer.alloc(4096, 1).toString('base64'),
        ContentType: 'application/octet-stream',
        ContentLength: 4096,
        ContentID: '',
      },
    ],
  };
  const settings = { username: 'postmark', password: 'correct-horse' };

  test("basic auth; Message-ID from Headers (MessageID is Postmark's UUID); the oversize attachment dropped", async () => {
    const [m] = emails(await parsePostmark(json(payload, basicAuth('postmark', 'correct-horse')), ctx(settings)));
    assert.equal(m?.messageId, '<CAF=pm1@mail.gmail.com>');
    assert.equal(m?.providerId, '22c74902-a0c1-4511-804f-341342852c90');
    assert.deepEqual(m?.inReplyTo, ['<abc123DEF456ghi.cartero@acme.example>']);
    assert.deepEqual(m?.envelopeTo, ['support+abc@inbound.postmarkapp.com']);
    assert.equal(m?.parts.length, 1);
    assert.equal(m?.parts[0]?.content.toString(), 'hello');
    assert.equal(m?.dropped[0]?.filename, 'big.bin');
    assert.match(m?.dropped[0]?.reason ?? '', /1024-byte attachment limit/);
  });

  test('enabled only with basic auth; wrong or missing basic auth → 401 from the headers', () => {
    assert.equal(postmarkGate.enabled({}), false);
    assert.equal(postmarkGate.enabled(settings), true);
    assert.throws(() => postmarkGate.checkHead({ headers: {} }, settings), AuthenticationError);
    assert.throws(() => postmarkGate.checkHead({ headers: basicAuth('postmark', 'wrong') }, settings), AuthenticationError);
    postmarkGate.checkHead({ headers: basicAuth('postmark', 'correct-horse') }, settings);
  });

  test('RawEmail, when the account includes it, is parsed whole', async () => {
    const raw = replyMime({ messageId: '<raw-pm@mail.example>', inReplyTo: '<x1234567890.cartero@acme.example>' });
    const [m] = emails(await parsePostmark(json({ ...payload, RawEmail: raw }, basicAuth('postmark', 'correct-horse')), ctx(settings)));
    assert.equal(m?.messageId, '<raw-pm@mail.example>');
    assert.ok(m?.raw);
  });
});

describe('sendgrid', () => {
  const headers = [
    'Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Wed, 27 Jul 2016 20:53:06 +0000 (UTC)',
    'From: Alice <alice@customer.example>',
    'To: support@reply.acme.example',
    'Subject: Re: Your case #42',
    'Message-ID: <CAF=sg1@mail.gmail.com>',
    'In-Reply-To: <abc123DEF456ghi.cartero@acme.example>',
    'References: <root@acme.example>',
    ' <abc123DEF456ghi.cartero@acme.example>',
    '',
  ].join('\n');

  test('parsed mode: envelope routes, threading from the headers text, text in the charset SendGrid names', async () => {
    const latin1 = Buffer.from('Gr\xfcße aus M\xfcnchen, se\xf1or', 'latin1');
    const form = multipart(
      [
        ['headers', headers],
        ['dkim', '{@gmail.com : pass}'],
        ['to', 'support@reply.acme.example'],
        ['from', 'Alice <alice@customer.example>'],
        ['subject', 'Re: Your case #42'],
        ['text', latin1],
        ['html', '<p>hi</p>'],
        ['envelope', JSON.stringify({ to: ['support@reply.acme.example'], from: 'alice@customer.example' })],
        ['charsets', JSON.stringify({ to: 'UTF-8', html: 'UTF-8', subject: 'UTF-8', from: 'UTF-8', text: 'iso-8859-1' })],
        ['SPF', 'pass'],
        ['spam_score', '0.1'],
        ['attachments', '1'],
        ['attachment-info', JSON.stringify({ attachment1: { filename: 'notes.txt', name: 'notes.txt', type: 'text/plain' } })],
      ],
      [{ field: 'attachment1', filename: 'notes.txt', type: 'text/plain', content: Buffer.from('notes') }],
    );
    const [m] = emails(await parseSendgrid({ headers: { 'content-type': form.contentType }, body: form.body }, ctx({})));
    assert.equal(m?.messageId, '<CAF=sg1@mail.gmail.com>');
    assert.deepEqual(m?.references, ['<root@acme.example>', '<abc123DEF456ghi.cartero@acme.example>']);
    assert.deepEqual(m?.envelopeTo, ['support@reply.acme.example']);
    assert.equal(m?.text, 'Grüße aus München, señor');
    assert.equal(m?.parts[0]?.filename, 'notes.txt');
    assert.equal(m?.spamScore, 0.1);
  });

  test("raw mode: the `email` field (larger than multer's 1 MB default) parsed whole with mailparser", async () => {
    const raw = replyMime({
      messageId: '<CAF=sgraw@mail.gmail.com>',
      inReplyTo: '<abc123DEF456ghi.cartero@acme.example>',
      body: 'x'.repeat(1_200_000),
    });
    const form = multipart([
      ['email', raw],
      ['to', 'support@reply.acme.example'],
      ['envelope', JSON.stringify({ to: ['support@reply.acme.example'], from: 'alice@customer.example' })],
      ['charsets', JSON.stringify({ to: 'UTF-8' })],
    ]);
    const [m] = emails(await parseSendgrid({ headers: { 'content-type': form.contentType }, body: form.body }, ctx({})));
    assert.equal(m?.messageId, '<CAF=sgraw@mail.gmail.com>');
    assert.equal(m?.text.trim().length, 1_200_000);
  });

  test('enabled only with basic auth, which is required and checked from the headers', () => {
    const settings = { username: 'sg', password: 'sendgrid-pass' };
    assert.equal(sendgridGate.enabled({}), false);
    assert.equal(sendgridGate.enabled(settings), true);
    assert.throws(() => sendgridGate.checkHead({ headers: {} }, settings), AuthenticationError);
    assert.throws(() => sendgridGate.checkHead({ headers: basicAuth('sg', 'wrong') }, settings), AuthenticationError);
    sendgridGate.checkHead({ headers: basicAuth('sg', 'sendgrid-pass') }, settings);
  });

  test('not multipart → 400', async () => {
    await assert.rejects(parseSendgrid(json({}), ctx({})), ValidationError);
  });
});

describe('mailgun', () => {
  const key = 'key-mailgun-signing-0123456789';
  const parsedFields = (sig: ReturnType<typeof mailgunSigned>): Array<[string, string]> => [
    ['recipient', 'support@reply.acme.example'],
    ['sender', 'alice@customer.example'],
    ['from', 'Alice <alice@customer.example>'],
    ['subject', 'Re: Your case #42'],
    ['body-plain', 'Thanks'],
    ['stripped-text', 'Thanks'],
    ['body-html', '<p>Thanks</p>'],
    [
      'message-headers',
      JSON.stringify([
        ['Received', 'by mx'],
        ['Received', 'by mx2'],
        ['Message-Id', '<CAF=mg1@mail.gmail.com>'],
        ['In-Reply-To', '<abc123DEF456ghi.cartero@acme.example>'],
        ['From', 'Alice <alice@customer.example>'],
      ]),
    ],
    ['Message-Id', '<CAF=mg1@mail.gmail.com>'],
    ['timestamp', sig.timestamp],
    ['token', sig.token],
    ['signature', sig.signature],
  ];

  test('parsed (urlencoded) with a valid signature; the token is returned for the replay check', async () => {
    const sig = mailgunSigned(key);
    const body = Buffer.from(new URLSearchParams(parsedFields(sig)).toString());
    const r = await parseMailgun({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }, ctx({ signingKey: key }));
    const [m] = emails(r);
    assert.equal(m?.messageId, '<CAF=mg1@mail.gmail.com>');
    assert.deepEqual(m?.inReplyTo, ['<abc123DEF456ghi.cartero@acme.example>']);
    assert.equal(m?.headers.filter((h) => h.name === 'Received').length, 2);
    assert.deepEqual(m?.envelopeTo, ['support@reply.acme.example']);
    assert.equal(r.kind === 'emails' && r.replayToken, sig.token);
  });

  test('parsed multipart with an attachment', async () => {
    const sig = mailgunSigned(key);
    const form = multipart(
      [...parsedFields(sig), ['attachment-count', '1']],
      [{ field: 'attachment-1', filename: 'a.txt', type: 'text/plain', content: Buffer.from('att') }],
    );
    const [m] = emails(await parseMailgun({ headers: { 'content-type': form.contentType }, body: form.body }, ctx({ signingKey: key })));
    assert.equal(m?.parts[0]?.content.toString(), 'att');
  });

  test('MIME variant (body-mime)', async () => {
    const sig = mailgunSigned(key);
    const form = multipart([
      ['recipient', 'support@reply.acme.example'],
      ['sender', 'alice@customer.example'],
      ['from', 'Alice <alice@customer.example>'],
      ['subject', 'Re: Your case #42'],
      ['body-mime', replyMime({ messageId: '<CAF=mgmime@mail.gmail.com>', inReplyTo: '<abc123DEF456ghi.cartero@acme.example>' })],
      ['timestamp', sig.timestamp],
      ['token', sig.token],
      ['signature', sig.signature],
    ]);
    const [m] = emails(await parseMailgun({ headers: { 'content-type': form.contentType }, body: form.body }, ctx({ signingKey: key })));
    assert.equal(m?.messageId, '<CAF=mgmime@mail.gmail.com>');
  });

  test('wrong key, tampered token, stale timestamp, no key configured → 401', async () => {
    const post = (sig: ReturnType<typeof mailgunSigned>) => ({
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: Buffer.from(new URLSearchParams(parsedFields(sig)).toString()),
    });
    await assert.rejects(parseMailgun(post(mailgunSigned('another-key-0000')), ctx({ signingKey: key })), AuthenticationError);
    await assert.rejects(
      parseMailgun(post({ ...mailgunSigned(key), token: 'x'.repeat(50) }), ctx({ signingKey: key })),
      AuthenticationError,
    );
    await assert.rejects(
      parseMailgun(post(mailgunSigned(key, Math.floor(Date.now() / 1000) - 3600)), ctx({ signingKey: key })),
      /more than 15 minutes/,
    );
    await assert.rejects(parseMailgun(post(mailgunSigned(key)), ctx({})), AuthenticationError);
    assert.equal(mailgunGate.enabled({}), false);
    assert.equal(mailgunGate.enabled({ signingKey: key }), true);
  });
});

describe('ses (SNS)', () => {
  const settings = { topicArns: [TOPIC] };
  const raw = replyMime({ messageId: '<CAF=ses1@mail.gmail.com>', inReplyTo: '<abc123DEF456ghi.cartero@acme.example>' });
  const post = (env: Record<string, string>): InboundRequest => ({
    headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': env.Type! },
    body: Buffer.from(JSON.stringify(env)),
  });
  const confirmations: string[] = [];
  const confirm = async (url: string) => {
    confirmations.push(url);
  };

  for (const version of ['1', '2'] as const) {
    test(`Notification signed with SignatureVersion ${version}: verified, raw message parsed`, async () => {
      const env = snsEnvelope(signer.key, {
        Type: 'Notification',
        Message: sesReceived(raw, ['support@reply.acme.example']),
        SignatureVersion: version,
        Subject: 'Amazon SES Email Receipt Notification',
      });
      const [m] = emails(await parseSes(post(env), ctx(settings), confirm));
      assert.equal(m?.messageId, '<CAF=ses1@mail.gmail.com>');
      assert.equal(m?.providerId, 'o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1');
      assert.deepEqual(m?.envelopeTo, ['support@reply.acme.example']);
    });
  }

  test('the certificate is fetched once and cached', async () => {
    const before = certFetches;
    for (let i = 0; i < 3; i++) {
      await parseSes(
        post(snsEnvelope(signer.key, { Type: 'Notification', Message: sesReceived(raw, ['support@reply.acme.example']) })),
        ctx(settings),
        confirm,
      );
    }
    assert.ok(certFetches - before <= 0, `fetched ${certFetches - before} more times`);
  });

  test('SubscriptionConfirmation: verified, then SubscribeURL visited', async () => {
    const url = `https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${TOPIC}&Token=tok`;
    const env = snsEnvelope(signer.key, {
      Type: 'SubscriptionConfirmation',
      Message: 'You have chosen to subscribe…',
      SubscribeURL: url,
      Token: 'tok',
    });
    const r = await parseSes(post(env), ctx(settings), confirm);
    assert.equal(r.kind, 'ack');
    assert.equal(confirmations.at(-1), url);
  });

  test('tampered message, other topic, foreign certificate host, no topic configured → 401', async () => {
    const env = snsEnvelope(signer.key, { Type: 'Notification', Message: sesReceived(raw, ['support@reply.acme.example']) });
    await assert.rejects(
      parseSes(post({ ...env, Message: sesReceived(raw.replace('Thanks', 'Pay me'), ['x@y.example']) }), ctx(settings), confirm),
      /signature does not verify/,
    );
    const other = snsEnvelope(signer.key, {
      Type: 'Notification',
      Message: sesReceived(raw, []),
      TopicArn: 'arn:aws:sns:eu-west-1:999999999999:attacker',
    });
    await assert.rejects(parseSes(post(other), ctx(settings), confirm), /not one of this tenant's SNS topics/);
    await assert.rejects(
      parseSes(post({ ...env, SigningCertURL: 'https://evil.example/sns.pem' }), ctx(settings), confirm),
      /Amazon SNS host/,
    );
    await assert.rejects(
      parseSes(post({ ...env, SigningCertURL: 'https://sns.eu-west-1.amazonaws.com.evil.example/x.pem' }), ctx(settings), confirm),
      /Amazon SNS host/,
    );
    await assert.rejects(parseSes(post(env), ctx({}), confirm), AuthenticationError);
    // The signed topic must be the one the header announced (the header is what was checked first).
    await assert.rejects(
      parseSes(
        { ...post(env), headers: { ...post(env).headers, 'x-amz-sns-topic-arn': 'arn:aws:sns:eu-west-1:123456789012:other' } },
        ctx({ topicArns: [TOPIC, 'arn:aws:sns:eu-west-1:123456789012:other'] }),
        confirm,
      ),
      /x-amz-sns-topic-arn/,
    );
  });

  test('gate: enabled only with a topic; the x-amz-sns-topic-arn header must name one of them, before the body is read', () => {
    assert.equal(sesGate.enabled({}), false);
    assert.equal(sesGate.enabled({ topicArns: [] }), false);
    assert.equal(sesGate.enabled(settings), true);
    assert.throws(() => sesGate.checkHead({ headers: {} }, settings), /x-amz-sns-topic-arn/);
    assert.throws(
      () => sesGate.checkHead({ headers: { 'x-amz-sns-topic-arn': 'arn:aws:sns:eu-west-1:999999999999:attacker' } }, settings),
      /not one of this tenant's SNS topics/,
    );
    sesGate.checkHead({ headers: { 'x-amz-sns-topic-arn': TOPIC } }, settings);
    assert.ok((sesGate.maxBodyBytes ?? Infinity) <= 1024 * 1024);
  });

  test('S3-action notification without content → 400 explaining the fix', async () => {
    const message = JSON.stringify({
      notificationType: 'Received',
      mail: { messageId: 'x' },
      receipt: { action: { type: 'S3', bucketName: 'b' } },
    });
    await assert.rejects(
      parseSes(post(snsEnvelope(signer.key, { Type: 'Notification', Message: message })), ctx(settings), confirm),
      (e: unknown) => e instanceof ValidationError && e.fields[0]?.field === 'Message.content',
    );
  });
});

describe('mime (raw RFC 5322 with a bearer secret)', () => {
  const raw = Buffer.from(replyMime({ messageId: '<raw1@mail.example>', inReplyTo: '<abc123DEF456ghi.cartero@acme.example>' }));
  const req = (auth?: string): InboundRequest => ({
    headers: { 'content-type': 'message/rfc822', ...(auth ? { authorization: auth } : {}) },
    body: raw,
  });

  test('right bearer → parsed', async () => {
    const [m] = emails(await parseMime(req('Bearer ibs_secret_value_1234'), ctx({ bearerToken: 'ibs_secret_value_1234' })));
    assert.equal(m?.messageId, '<raw1@mail.example>');
    assert.equal(m?.from?.address, 'alice@customer.example');
  });

  test('enabled only with a bearer secret; missing or wrong bearer → 401 from the headers', () => {
    const settings = { bearerToken: 'ibs_secret_value_1234' };
    assert.equal(mimeGate.enabled({}), false);
    assert.equal(mimeGate.enabled(settings), true);
    assert.throws(() => mimeGate.checkHead(req(), settings), AuthenticationError);
    assert.throws(() => mimeGate.checkHead(req('Bearer nope'), settings), AuthenticationError);
    mimeGate.checkHead(req('Bearer ibs_secret_value_1234'), settings);
  });

  test('not a message at all → 400', async () => {
    await assert.rejects(
      parseMime(
        { headers: { authorization: 'Bearer ibs_secret_value_1234' }, body: Buffer.from('hello world, no headers here') },
        ctx({ bearerToken: 'ibs_secret_value_1234' }),
      ),
      ValidationError,
    );
  });
});
