import { execFileSync } from 'node:child_process';
import { createHmac, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringToSign, type SnsMessage } from '../../src/inbound/sns';

/**
 * Requests built the way each provider's documentation shows them, for unit and integration tests.
 * Nothing here fakes Cartero: these are the bytes a provider would send.
 */

/** An RSA key and a self-signed certificate, as SNS signs with (openssl CLI). */
export function makeSnsSigner(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cartero-sns-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
        '-subj',
        '/CN=sns.amazonaws.com',
        '-days',
        '2',
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    return { key: readFileSync(path.join(dir, 'k.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'c.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const CERT_URL = 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem';
export const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:cartero-inbound';

export function snsEnvelope(
  key: string,
  fields: {
    Type: SnsMessage['Type'];
    Message: string;
    SignatureVersion?: '1' | '2';
    TopicArn?: string;
    SubscribeURL?: string;
    Token?: string;
    Subject?: string;
  },
): Record<string, string> {
  const m: SnsMessage = {
    Type: fields.Type,
    MessageId: 'a1b2c3d4-0000-4000-8000-' + Math.random().toString(16).slice(2, 14).padEnd(12, '0'),
    TopicArn: fields.TopicArn ?? TOPIC,
    Message: fields.Message,
    Timestamp: new Date().toISOString(),
    SignatureVersion: fields.SignatureVersion ?? '1',
    Signature: '',
    SigningCertURL: CERT_URL,
    ...(fields.Subject !== undefined ? { Subject: fields.Subject } : {}),
    ...(fields.Token !== undefined ? { Token: fields.Token } : {}),
    ...(fields.SubscribeURL !== undefined ? { SubscribeURL: fields.SubscribeURL } : {}),
    ...(fields.Type === 'Notification' ? { UnsubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe' } : {}),
  };
  m.Signature = sign(m.SignatureVersion === '1' ? 'sha1' : 'sha256', Buffer.from(stringToSign(m)), key).toString('base64');
  return m;
}

/** An SES receipt notification (SNS action, BASE64 encoding) carrying `raw`. */
export function sesReceived(raw: string, recipients: string[]): string {
  return JSON.stringify({
    notificationType: 'Received',
    mail: {
      timestamp: new Date().toISOString(),
      source: 'alice@customer.example',
      messageId: 'o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1',
      destination: recipients,
      headersTruncated: false,
    },
    receipt: {
      recipients,
      spamVerdict: { status: 'PASS' },
      virusVerdict: { status: 'PASS' },
      action: { type: 'SNS', topicArn: TOPIC, encoding: 'BASE64' },
    },
    content: Buffer.from(raw).toString('base64'),
  });
}

/** A multipart/form-data body as SendGrid and Mailgun post it. */
export function multipart(
  fields: Array<[string, string | Buffer]>,
  files: Array<{ field: string; filename: string; type: string; content: Buffer }> = [],
): { body: Buffer; contentType: string } {
  const boundary = `xYzZY${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [name, value] of fields) {
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`),
      Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'),
      Buffer.from('\r\n'),
    );
  }
  for (const f of files) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${f.field}"; filename="${f.filename}"\r\nContent-Type: ${f.type}\r\n\r\n`,
      ),
      f.content,
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export function mailgunSigned(
  signingKey: string,
  timestamp = Math.floor(Date.now() / 1000),
  token = Math.random().toString(36).slice(2).padEnd(50, 'x').slice(0, 50),
) {
  return { timestamp: String(timestamp), token, signature: createHmac('sha256', signingKey).update(`${timestamp}${token}`).digest('hex') };
}

/** A reply as a mail client writes it. */
export function replyMime(o: {
  from?: string;
  to?: string;
  subject?: string;
  messageId: string;
  inReplyTo?: string;
  references?: string[];
  body?: string;
  extraHeaders?: string;
  /** One attachment: the message becomes multipart/mixed with the text and it (base64). */
  attachment?: { filename: string; contentType: string; content: Buffer };
}): string {
  const text = o.body ?? 'Thanks, that fixed it.';
  const boundary = 'b1_cartero_fixture';
  const body = o.attachment
    ? [
        `Content-Type: multipart/mixed; boundary="${boundary}"`,
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        text,
        `--${boundary}`,
        `Content-Type: ${o.attachment.contentType}; name="${o.attachment.filename}"`,
        `Content-Disposition: attachment; filename="${o.attachment.filename}"`,
        'Content-Transfer-Encoding: base64',
        '',
        (o.attachment.content.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n'),
        `--${boundary}--`,
        '',
      ]
    : ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text, ''];
  return [
    `From: ${o.from ?? 'Alice <alice@customer.example>'}`,
    `To: ${o.to ?? 'support@acme.example'}`,
    `Subject: ${o.subject ?? 'Re: Your case #42'}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: ${o.messageId}`,
    ...(o.inReplyTo ? [`In-Reply-To: ${o.inReplyTo}`] : []),
    ...(o.references?.length ? [`References: ${o.references.join(' ')}`] : []),
    ...(o.extraHeaders ? [o.extraHeaders] : []),
    'MIME-Version: 1.0',
    ...body,
  ].join('\r\n');
}

/** What a provider's webhook needs from the tenant to accept a post (the values the tests configure). */
export interface InboundCredentials {
  brevoBearer: string;
  postmark: { username: string; password: string };
  sendgrid: { username: string; password: string };
  mailgunKey: string;
  mimeSecret: string;
  /** The SNS signing key (makeSnsSigner().key). */
  snsKey: string;
}

export interface InboundReply {
  messageId: string;
  inReplyTo?: string;
  references?: string[];
  subject?: string;
  to?: string;
  from?: string;
  body?: string;
  attachment?: { filename: string; contentType: string; content: Buffer };
}

export const INBOUND_VARIANTS = [
  'brevo',
  'postmark',
  'sendgrid-parsed',
  'sendgrid-raw',
  'mailgun-parsed',
  'mailgun-mime',
  'ses',
  'mime',
] as const;

const basicAuth = (c: { username: string; password: string }) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

/**
 * `reply` as `variant`'s provider posts it (its documented format and authentication): the URL path
 * after `/v1/inbound/`, the headers and the body. `wrongAuth` spoils the credentials.
 */
export function inboundRequest(
  variant: string,
  reply: InboundReply,
  creds: InboundCredentials,
  opts: { wrongAuth?: boolean } = {},
): { provider: string; pathSuffix: string; headers: Record<string, string>; body: Buffer | string } {
  const wrong = opts.wrongAuth === true;
  const raw = replyMime(reply);
  const subject = reply.subject ?? 'Re: Your case #42';
  const to = reply.to ?? 'support@acme.example';
  const headersList: Array<[string, string]> = [
    ['From', 'Alice <alice@customer.example>'],
    ['To', to],
    ['Subject', subject],
    ['Message-ID', reply.messageId],
    ...(reply.inReplyTo ? ([['In-Reply-To', reply.inReplyTo]] as Array<[string, string]>) : []),
    ...(reply.references?.length ? ([['References', reply.references.join(' ')]] as Array<[string, string]>) : []),
  ];
  const provider = variant.split('-')[0]!;
  const a = reply.attachment;
  const headers: Record<string, string> = {};
  let body: Buffer | string;
  switch (variant) {
    case 'brevo':
      headers['content-type'] = 'application/json';
      headers.authorization = `Bearer ${wrong ? 'brevo-wrong-secret-00001' : creds.brevoBearer}`;
      body = JSON.stringify({
        items: [
          {
            Uuid: [`uuid-${reply.messageId}`],
            MessageId: reply.messageId,
            InReplyTo: reply.inReplyTo ?? null,
            From: { Name: 'Alice', Address: 'alice@customer.example' },
            To: [{ Name: null, Address: to }],
            Subject: subject,
            RawTextBody: reply.body ?? 'Thanks',
            Headers: Object.fromEntries(headersList),
            SpamScore: 0,
            ...(a
              ? {
                  Attachments: [
                    { Name: a.filename, ContentType: a.contentType, ContentLength: a.content.length, DownloadToken: `tok-${a.filename}` },
                  ],
                }
              : {}),
          },
        ],
      });
      break;
    case 'postmark':
      headers['content-type'] = 'application/json';
      headers.authorization = basicAuth({ ...creds.postmark, password: wrong ? 'nope' : creds.postmark.password });
      body = JSON.stringify({
        From: 'alice@customer.example',
        FromFull: { Email: 'alice@customer.example', Name: 'Alice', MailboxHash: '' },
        ToFull: [{ Email: to, Name: '', MailboxHash: '' }],
        OriginalRecipient: to,
        Subject: subject,
        MessageID: `pm-${reply.messageId}`,
        TextBody: reply.body ?? 'Thanks',
        Headers: headersList.map(([Name, Value]) => ({ Name, Value })),
        Attachments: a
          ? [{ Name: a.filename, Content: a.content.toString('base64'), ContentType: a.contentType, ContentLength: a.content.length }]
          : [],
      });
      break;
    case 'sendgrid-parsed': {
      const f = multipart(
        [
          ['headers', headersList.map(([k, v]) => `${k}: ${v}`).join('\n')],
          ['from', 'Alice <alice@customer.example>'],
          ['to', to],
          ['subject', subject],
          ['text', reply.body ?? 'Thanks'],
          ['envelope', JSON.stringify({ to: [to], from: 'alice@customer.example' })],
          ['charsets', JSON.stringify({ to: 'UTF-8', text: 'UTF-8', subject: 'UTF-8', from: 'UTF-8' })],
          ...(a ? ([['attachments', '1']] as Array<[string, string]>) : []),
        ],
        a ? [{ field: 'attachment1', filename: a.filename, type: a.contentType, content: a.content }] : [],
      );
      headers['content-type'] = f.contentType;
      headers.authorization = basicAuth({ ...creds.sendgrid, password: wrong ? 'nope' : creds.sendgrid.password });
      body = f.body;
      break;
    }
    case 'sendgrid-raw': {
      const f = multipart([
        ['email', raw],
        ['to', to],
        ['envelope', JSON.stringify({ to: [to], from: 'alice@customer.example' })],
      ]);
      headers['content-type'] = f.contentType;
      headers.authorization = basicAuth({ ...creds.sendgrid, password: wrong ? 'nope' : creds.sendgrid.password });
      body = f.body;
      break;
    }
    case 'mailgun-parsed':
    case 'mailgun-mime': {
      const sig = mailgunSigned(wrong ? 'wrong-key-0000' : creds.mailgunKey);
      const fields: Array<[string, string]> =
        variant === 'mailgun-mime'
          ? [
              ['recipient', to],
              ['sender', 'alice@customer.example'],
              ['body-mime', raw],
            ]
          : [
              ['recipient', to],
              ['sender', 'alice@customer.example'],
              ['from', 'Alice <alice@customer.example>'],
              ['subject', subject],
              ['body-plain', reply.body ?? 'Thanks'],
              ['message-headers', JSON.stringify(headersList)],
            ];
      fields.push(['timestamp', sig.timestamp], ['token', sig.token], ['signature', sig.signature]);
      if (a && variant === 'mailgun-parsed') {
        const f = multipart(
          [...fields, ['attachment-count', '1']],
          [{ field: 'attachment-1', filename: a.filename, type: a.contentType, content: a.content }],
        );
        headers['content-type'] = f.contentType;
        body = f.body;
      } else {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        body = new URLSearchParams(fields).toString();
      }
      break;
    }
    case 'ses':
      headers['content-type'] = 'text/plain; charset=UTF-8';
      headers['x-amz-sns-message-type'] = 'Notification';
      headers['x-amz-sns-topic-arn'] = TOPIC;
      body = JSON.stringify(snsEnvelope(creds.snsKey, { Type: 'Notification', Message: sesReceived(raw, [to]), SignatureVersion: '2' }));
      break;
    case 'mime':
      headers['content-type'] = 'message/rfc822';
      headers.authorization = `Bearer ${wrong ? 'wrong-secret' : creds.mimeSecret}`;
      body = raw;
      break;
    default:
      throw new Error(`unknown inbound variant ${variant}`);
  }
  return { provider, pathSuffix: `${provider}/`, headers, body };
}
