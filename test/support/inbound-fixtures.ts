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
}): string {
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
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    o.body ?? 'Thanks, that fixed it.',
    '',
  ].join('\r\n');
}
