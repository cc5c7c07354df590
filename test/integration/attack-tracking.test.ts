import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, startStack, type Stack } from '../support/stack';
import { WebhookReceiver } from '../support/webhook-receiver';

/**
 * Issue 12, item 5: tracking replay amplification. One pixel or link fetched over and over, or
 * from many addresses, must not turn into an unbounded stream of events, webhooks and case
 * signals. A real tracked message goes through the real workflow to a real SMTP server process;
 * its pixel and link (taken out of the MIME that arrived) are then fetched like an attacker would,
 * with a webhook receiver in another process counting what reaches the tenant.
 */
const MAX_EVENTS = 5;
const BURST = 60;
const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
let receiver: WebhookReceiver;
let key: string;
const tenantId = 'replay-1';
const hookPath = `/hooks/${tenantId}`;

before(async () => {
  pki = makeTestPki(['localhost']);
  receiver = await WebhookReceiver.start();
  stack = await startStack({
    TRACKING_FLUSH_MS: '100',
    TRACKING_MAX_EVENTS: String(MAX_EVENTS),
    TRACKING_IP_RATE: '1',
    TRACKING_IP_BURST: String(BURST),
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'loopback',
    WEBHOOK_SWEEP_INTERVAL_MS: '500',
  });
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id: tenantId,
      name: tenantId,
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: peer.port, security: 'starttls', tls: { ca: pki.caCert } },
      auth: { type: 'password', user: 'u', password: 'p' },
      tracking: { opens: true, clicks: true },
      webhook: { url: receiver.url(hookPath) },
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  key = r.body.apiKey as string;
  receiver.configure({ secrets: { [hookPath]: r.body.webhookSecret as string } });
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop(), receiver?.stop()]);
});

/** Sends a tracked message through the real workflow; returns its id and the local pixel and link URLs from the MIME that arrived. */
async function trackedMessage(to: string): Promise<{ id: string; pixel: string; link: string }> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: {
      from: 'news@acme.example',
      to: [to],
      subject: 'Offer',
      html: '<p>Hi <a href="https://shop.example/offer">offer</a></p>',
      track: { opens: true, clicks: true },
    },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.id as string;
  await eventually(
    async () => ((await api(stack, 'GET', `/v1/messages/${id}`, { key })).body.status === 'sent' ? true : undefined),
    30_000,
    'sent',
  );
  const got = peer.messages().find((m) => m.messageId === r.body.messageId);
  assert.ok(got, 'the SMTP server received the message');
  const text = got.raw.replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
  const pixel = /\/t\/o\/[\w-]+/.exec(text)?.[0];
  const link = /\/t\/c\/[\w-]+/.exec(text)?.[0];
  assert.ok(pixel && link, 'tracked pixel and link in the MIME');
  return { id, pixel: stack.baseUrl + pixel, link: stack.baseUrl + link };
}

/** One GET from a chosen loopback address (127.0.0.0/8 is all this machine's). */
function get(
  url: string,
  opts: { localAddress?: string; userAgent?: string } = {},
): Promise<{ status: number; location?: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      {
        headers: { 'user-agent': opts.userAgent ?? CHROME },
        agent: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () =>
          resolve({ status: res.statusCode!, ...(res.headers.location ? { location: res.headers.location } : {}), bytes }),
        );
      },
    );
    req.on('error', reject);
  });
}

async function inBatches<T>(n: number, size: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += size) out.push(...(await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, j) => fn(i + j)))));
  return out;
}

/** Waits for the buffer to write what it took, and the writer's events to land. */
async function settle(): Promise<void> {
  await eventually(
    async () => {
      await stack.tracking.buffer.flush();
      return stack.tracking.buffer.size === 0 ? true : undefined;
    },
    10_000,
    'hits written',
  );
}

async function hitEvents(messageId: string): Promise<{ opened: number; clicked: number }> {
  // Straight from the outbox collection: a tenant's listing would stop at its first 1000 events.
  const events = stack.store.db.collection('events');
  return {
    opened: await events.countDocuments({ tenantId, messageId, type: 'message.opened' }),
    clicked: await events.countDocuments({ tenantId, messageId, type: 'message.clicked' }),
  };
}

async function caseSignals(messageId: string): Promise<{ opened: number; clicked: number }> {
  const caseId = (await stack.messages.get(tenantId, messageId)).caseId!;
  const tl = await stack.repos.cases.timeline(tenantId, caseId, { limit: 500 });
  return { opened: tl.filter((e) => e.kind === 'opened').length, clicked: tl.filter((e) => e.kind === 'clicked').length };
}

function webhooks(messageId: string): { opened: number; clicked: number } {
  const mine = receiver.to(hookPath).filter((r) => r.data.messageId === messageId);
  const distinct = (type: string) => new Set(mine.filter((r) => r.type === type).map((r) => r.webhookId)).size;
  return { opened: distinct('message.opened'), clicked: distinct('message.clicked') };
}

describe('attack: tracking replay amplification', () => {
  test('the same pixel and link fetched 500 times from one client: one open and one click recorded, one event, one case signal, one webhook each', async () => {
    const m = await trackedMessage('alice@customer.example');
    const pixels = await inBatches(500, 25, () => get(m.pixel, { localAddress: '127.0.4.1' }));
    assert.ok(
      pixels.every((p) => p.status === 200 && p.bytes === 42),
      'every fetch still gets the GIF',
    );
    const clicks = await inBatches(500, 25, () => get(m.link, { localAddress: '127.0.4.2' }));
    assert.ok(
      clicks.every((c) => c.status === 302 && c.location === 'https://shop.example/offer'),
      'every click still redirects',
    );
    await settle();

    const view = (await api(stack, 'GET', `/v1/messages/${m.id}`, { key })).body;
    assert.deepEqual(view.tracking.opens.human, { total: 1, unique: 1 });
    assert.deepEqual(view.tracking.clicks.human, { total: 1, unique: 1 });
    assert.deepEqual(await hitEvents(m.id), { opened: 1, clicked: 1 });

    // The webhook of each event arrives; nothing more does.
    await eventually(
      () => {
        const w = webhooks(m.id);
        return w.opened >= 1 && w.clicked >= 1 ? true : undefined;
      },
      30_000,
      'webhooks delivered',
    );
    const signals = await eventually(
      async () => {
        const s = await caseSignals(m.id);
        return s.opened >= 1 && s.clicked >= 1 ? s : undefined;
      },
      10_000,
      'case signals',
    );
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(webhooks(m.id), { opened: 1, clicked: 1 });
    assert.ok(signals.opened <= 1 && signals.clicked <= 1, JSON.stringify(signals));
    assert.deepEqual(await caseSignals(m.id), { opened: 1, clicked: 1 });

    const metrics = await (await fetch(`${stack.metricsUrl}/metrics`)).text();
    const outcome = (kind: string, o: string) =>
      Number(new RegExp(`cartero_tracking_hits_total\\{kind="${kind}",outcome="${o}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    assert.equal(outcome('open', 'repeat') + outcome('open', 'rate_limited'), 499);
    assert.equal(outcome('click', 'repeat') + outcome('click', 'rate_limited'), 499);
  });

  test('hits from many addresses for one message: events and case signals stop at TRACKING_MAX_EVENTS, counts go on', async () => {
    const m = await trackedMessage('bob@customer.example');
    const ips = Array.from({ length: 40 }, (_, i) => `127.0.1.${i + 2}`);
    await inBatches(ips.length, 10, (i) => get(m.pixel, { localAddress: ips[i]! }));
    await inBatches(ips.length, 10, (i) => get(m.link, { localAddress: ips[i]! }));
    await settle();

    const view = (await api(stack, 'GET', `/v1/messages/${m.id}`, { key })).body;
    assert.equal(view.tracking.opens.human.total + view.tracking.opens.machine.total, 40, 'every open counted');
    assert.equal(view.tracking.clicks.human.total + view.tracking.clicks.machine.total, 40, 'every click counted');
    assert.deepEqual(await hitEvents(m.id), { opened: MAX_EVENTS, clicked: MAX_EVENTS });
    await eventually(
      () => {
        const w = webhooks(m.id);
        return w.opened >= MAX_EVENTS && w.clicked >= MAX_EVENTS ? true : undefined;
      },
      30_000,
      'webhooks delivered',
    );
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(webhooks(m.id), { opened: MAX_EVENTS, clicked: MAX_EVENTS });
    const signals = await caseSignals(m.id);
    assert.ok(signals.opened <= MAX_EVENTS && signals.clicked <= MAX_EVENTS, JSON.stringify(signals));

    // More later: counted, still not announced.
    await inBatches(10, 10, (i) => get(m.pixel, { localAddress: `127.0.2.${i + 2}` }));
    await settle();
    const later = (await api(stack, 'GET', `/v1/messages/${m.id}`, { key })).body;
    assert.equal(later.tracking.opens.human.total + later.tracking.opens.machine.total, 50);
    assert.deepEqual(await hitEvents(m.id), { opened: MAX_EVENTS, clicked: MAX_EVENTS });
  });

  test('one address changing its User-Agent on every fetch: recorded up to its rate limit, answered all the same', async () => {
    const m = await trackedMessage('carol@customer.example');
    const started = Date.now();
    const answers = await inBatches(300, 25, (i) => get(m.pixel, { localAddress: '127.0.3.9', userAgent: `${CHROME} r${i}` }));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(answers.every((a) => a.status === 200 && a.bytes === 42));
    await settle();
    const view = (await api(stack, 'GET', `/v1/messages/${m.id}`, { key })).body;
    const recorded = view.tracking.opens.human.total + view.tracking.opens.machine.total;
    // The bucket holds BURST and refills at 1/s.
    assert.ok(recorded >= BURST && recorded <= BURST + Math.ceil(seconds) + 1, `recorded ${recorded} in ${seconds} s`);
    assert.deepEqual(await hitEvents(m.id), { opened: MAX_EVENTS, clicked: 0 });
  });
});
