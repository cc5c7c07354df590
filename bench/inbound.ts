import busboy from 'busboy';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { temporalKind } from '../src/embedded/temporal';
import { withBenchServers } from './servers';
import { makeTestPki } from '../test/support/certs';
import {
  CERT_URL,
  INBOUND_VARIANTS,
  inboundRequest,
  makeSnsSigner,
  TOPIC,
  type InboundCredentials,
} from '../test/support/inbound-fixtures';
import { SmtpPeer } from '../test/support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack } from '../test/support/stack';

/**
 * bench/inbound: N provider webhooks — the eight variants of the six formats in turn (Brevo, Postmark
 * and SES JSON, SendGrid parsed and raw, Mailgun parsed and raw MIME, raw MIME), each a reply to one
 * of K sent messages, with a 20 KiB attachment where the format carries one — posted to Cartero
 * (authenticated, parsed off the event loop, classified, stored with its files, threaded into the
 * case, the case told) and, in the same run and process, to a **bare Express handler** that reads and
 * parses the same bodies with the same libraries (JSON, busboy, URLSearchParams, mailparser) and
 * answers 200. Prints requests/s for both at a fixed client concurrency, and the latency (p50/p99)
 * of each at a steady offered load of half the target rate.
 *
 *   npm run bench:inbound -- [N=2000] [concurrency=16] [steadyRate=100] [steadySecs=20]
 */
const N = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const STEADY_RATE = Number(process.argv[4] ?? 100);
const STEADY_SECS = Number(process.argv[5] ?? 20);
const SENT = 40;

const CREDS: InboundCredentials = {
  brevoBearer: 'brevo-bearer-secret-000001',
  postmark: { username: 'postmark', password: 'postmark-pass-1' },
  sendgrid: { username: 'sendgrid', password: 'sendgrid-pass-1' },
  mailgunKey: 'mailgun-signing-key-0123456789',
  mimeSecret: 'ibs_mime_secret_for_bench_0001',
  snsKey: '',
};

interface Prepared {
  variant: string;
  provider: string;
  headers: Record<string, string>;
  body: Buffer | string;
  caseId: string;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** What the bare handler does with a body: parse it as its format says, MIME included, and nothing else. */
async function bareParse(contentType: string, body: Buffer): Promise<number> {
  if (contentType.startsWith('multipart/form-data')) {
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      const bb = busboy({ headers: { 'content-type': contentType } });
      bb.on('field', () => n++);
      bb.on('file', (_name, stream) => {
        n++;
        stream.resume();
      });
      bb.on('close', () => resolve());
      bb.on('error', reject);
      Readable.from(body).pipe(bb);
    });
    return n;
  }
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(body.toString('utf8'));
    const mime = form.get('body-mime');
    return mime ? (await simpleParser(mime)).attachments.length : [...form.keys()].length;
  }
  if (contentType.startsWith('message/rfc822')) return (await simpleParser(body)).attachments.length;
  const json = JSON.parse(body.toString('utf8')) as { Message?: string };
  // SES through SNS: the notification inside carries the raw message, base64.
  if (typeof json.Message === 'string') {
    const inner = JSON.parse(json.Message) as { content?: string };
    if (inner.content) return (await simpleParser(Buffer.from(inner.content, 'base64'))).attachments.length;
  }
  return Object.keys(json).length;
}

async function main(): Promise<void> {
  await withBenchServers('bench-inbound', async () => {
    const signer = makeSnsSigner();
    CREDS.snsKey = signer.key;
    const stack = await startStack(
      // Bodies read at once: above the client's concurrency, so the figures are Cartero's work, not its admission limit.
      // The store gauges refresh at the production default, not the test stack's 1 s.
      {
        LOG_LEVEL: 'silent',
        INBOUND_ATTACHMENT_MAX_BYTES: '1000000',
        INBOUND_MAX_CONCURRENT: String(Math.max(32, CONCURRENCY * 2)),
        WORKER_METRICS_REFRESH_MS: '30000',
      },
      {
        app: {
          snsCertFetcher: async (url) => {
            if (url !== CERT_URL) throw new Error(`unexpected ${url}`);
            return signer.cert;
          },
          snsConfirm: async () => undefined,
          brevoAttachment: async (token) => Buffer.from(`attachment ${token}`.padEnd(20 * 1024, '.')),
        },
      },
    );
    const pki = makeTestPki(['localhost']);
    const peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
    const key = await createPeerTenant(stack, 'bench-in', peer, pki.caCert);
    const inboundKey = (await api(stack, 'GET', '/v1/tenants/bench-in', { key })).body.inbound.key as string;
    for (const [provider, body] of [
      ['brevo', { bearerToken: CREDS.brevoBearer, apiKey: 'xkeysib-bench' }],
      ['sendgrid', CREDS.sendgrid],
      ['mailgun', { signingKey: CREDS.mailgunKey }],
      ['mime', { bearerToken: CREDS.mimeSecret }],
      ['postmark', CREDS.postmark],
      ['ses', { topicArns: [TOPIC] }],
    ] as const) {
      const r = await api(stack, 'PUT', `/v1/tenants/bench-in/inbound/${provider}`, { key, body });
      if (r.status !== 200) throw new Error(`inbound settings ${provider}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    // The messages the mail answers: sent for real, so threading finds them by In-Reply-To.
    const sent: Array<{ id: string; messageId: string; caseId: string }> = [];
    for (let i = 0; i < SENT; i++) {
      const r = await api(stack, 'POST', '/v1/messages', {
        key,
        body: { from: 'support@acme.example', to: [`c${i}@customer.example`], subject: `Order ${i}`, text: 'Shipped.' },
      });
      sent.push({ id: r.body.id, messageId: r.body.messageId, caseId: r.body.caseId });
    }
    for (const m of sent) await messageUntil(stack, key, m.id, ['sent'], 120_000);

    const attachment = { filename: 'photo.jpg', contentType: 'image/jpeg', content: randomBytes(20 * 1024) };
    let seq = 0;
    const prepare = (n: number): Prepared[] =>
      Array.from({ length: n }, (_, i) => {
        const variant = INBOUND_VARIANTS[i % INBOUND_VARIANTS.length]!;
        const m = sent[i % SENT]!;
        const r = inboundRequest(
          variant,
          { messageId: `<bench-${++seq}-${Date.now()}@mail.customer.example>`, inReplyTo: m.messageId, subject: 'Re: Order', attachment },
          CREDS,
        );
        return { variant, provider: r.provider, headers: r.headers, body: r.body, caseId: m.caseId };
      });
    const cartero = (p: Prepared) =>
      `${stack.baseUrl}/v1/inbound/${p.provider}/${inboundKey}${p.variant === 'mailgun-mime' ? '/mime' : ''}`;

    const bare = express();
    bare.post('/bare', express.raw({ type: () => true, limit: '50mb' }), (req, res, next) => {
      bareParse(String(req.headers['content-type'] ?? ''), req.body as Buffer).then(
        (n) => res.json({ parsed: n }),
        (err: unknown) => next(err),
      );
    });
    const bareServer = await new Promise<Server>((resolve) => {
      const s = bare.listen(0, '127.0.0.1', () => resolve(s));
    });
    const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}/bare`;

    let wrongThread = 0;
    let failures = 0;
    const post = async (url: string, p: Prepared, check: boolean) => {
      const res = await fetch(url, { method: 'POST', headers: p.headers, body: p.body });
      const text = await res.text();
      if (res.status !== 200) {
        failures++;
        if (failures <= 3) process.stderr.write(`bench/inbound: ${p.variant} answered ${res.status}: ${text.slice(0, 300)}\n`);
        return;
      }
      if (check && (JSON.parse(text) as { received: Array<{ caseId: string | null }> }).received[0]?.caseId !== p.caseId) wrongThread++;
    };

    const throughput = async (target: 'bare' | 'cartero') => {
      const items = prepare(N);
      const t0 = Date.now();
      await pool(items, CONCURRENCY, (p) => post(target === 'bare' ? bareUrl : cartero(p), p, target === 'cartero'));
      return N / ((Date.now() - t0) / 1000);
    };
    const steady = async (target: 'bare' | 'cartero') => {
      const items = prepare(Math.round(STEADY_RATE * STEADY_SECS));
      const latencies: number[] = [];
      const t0 = Date.now();
      const inFlight: Array<Promise<void>> = [];
      for (const [i, p] of items.entries()) {
        const wait = t0 + (i * 1000) / STEADY_RATE - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const started = Date.now();
        inFlight.push(
          post(target === 'bare' ? bareUrl : cartero(p), p, target === 'cartero').then(() => void latencies.push(Date.now() - started)),
        );
      }
      await Promise.all(inFlight);
      return latencies.sort((a, b) => a - b);
    };

    // Warm both paths (JIT, connection pools, the parse pool's threads) before measuring.
    await pool(prepare(80), CONCURRENCY, (p) => post(cartero(p), p, false));
    await pool(prepare(80), CONCURRENCY, (p) => post(bareUrl, p, false));
    const bareRate = await throughput('bare');
    const carteroRate = await throughput('cartero');
    const bareSteady = await steady('bare');
    const carteroSteady = await steady('cartero');
    const stored = await stack.store.db.collection('inbound_messages').countDocuments({ tenantId: 'bench-in' });

    await new Promise<void>((resolve) => bareServer.close(() => resolve()));
    await stack.stop();
    await peer.stop();
    const lines = [
      `bench/inbound: N=${N}, client concurrency ${CONCURRENCY}, ${INBOUND_VARIANTS.length} variants of 6 provider formats in turn, 20 KiB attachment, temporal server: ${temporalKind()}`,
      `  bare Express (reads and parses the same bodies): ${bareRate.toFixed(1)} requests/s`,
      `  cartero (authenticated, parsed, classified, stored, threaded, case told): ${carteroRate.toFixed(1)} inbound mails/s`,
      `  ratio cartero/bare: ${(carteroRate / bareRate).toFixed(3)}`,
      `  steady ${STEADY_RATE}/s for ${STEADY_SECS} s: bare p50 ${percentile(bareSteady, 50)} ms, p99 ${percentile(bareSteady, 99)} ms; cartero p50 ${percentile(carteroSteady, 50)} ms, p99 ${percentile(carteroSteady, 99)} ms`,
      `  checks: ${failures} non-200 answers, ${wrongThread} threaded into another case than the answered message's, ${stored} stored`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/inbound: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
