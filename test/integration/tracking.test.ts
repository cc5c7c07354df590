import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PIXEL_GIF } from '../../src/api/routes/tracking';
import pino from 'pino';
import { createHitWriter } from '../../src/api/tracking/write-hits';
import { EventRepository } from '../../src/store/events';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * Opens, clicks and one-click unsubscribe end to end: a tracked message goes through the real
 * workflow to a real SMTP server process; the links are taken out of the MIME it received and
 * requested like a mail client would; counts come back on GET /v1/messages/:id and events land
 * in the outbox.
 */
const TRACK_BASE = 'https://track.acme-mail.test';
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack({ TRACKING_BASE_URL: TRACK_BASE, TRACKING_FLUSH_MS: '100' });
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

const HTML = `<!doctype html><html><body>
<p>Hello Alice, your order <a href="https://shop.example/orders/42?utm=mail&amp;x=1">#42</a> shipped.</p>
<p><a href="https://shop.example/track">Track it</a> · <a href="mailto:help@acme.example">Mail us</a> · <a href="tel:+34911234567">Call</a> · <a href="#details">Details</a></p>
<div data-cartero-unsubscribe><a href="https://acme.example/preferences">Email preferences</a></div>
</body></html>`;

/** Header block (unfolded) and decoded text/html and text/plain parts of a received message. */
function parts(raw: string): { html: string; text: string; headers: string } {
  const found: Record<string, string> = {};
  const walk = (entity: string): string => {
    const split = entity.search(/\r?\n\r?\n/);
    const head = entity.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
    const body = entity.slice(split).replace(/^\r?\n\r?\n/, '');
    const type = /^Content-Type:\s*([^;\s]+)/im.exec(head)?.[1]?.toLowerCase() ?? 'text/plain';
    const boundary = /boundary="?([^";\s]+)"?/i.exec(head)?.[1];
    if (type.startsWith('multipart/') && boundary) {
      for (const p of body.split(`--${boundary}`).slice(1)) if (!p.startsWith('--')) walk(p.replace(/^\r?\n/, ''));
    } else {
      const cte = /^Content-Transfer-Encoding:\s*(\S+)/im.exec(head)?.[1] ?? '7bit';
      const decoded = /base64/i.test(cte)
        ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
        : /quoted-printable/i.test(cte)
          ? Buffer.from(
              body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
              'latin1',
            ).toString('utf8')
          : body;
      found[type] ??= decoded;
    }
    return head;
  };
  const headers = walk(raw);
  return { html: found['text/html'] ?? '', text: found['text/plain'] ?? '', headers };
}

const local = (url: string) => url.replace(TRACK_BASE, stack.baseUrl);
const hrefs = (html: string) => [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]!);
const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

async function sendAndReceive(key: string, body: Record<string, unknown>) {
  const r = await api(stack, 'POST', '/v1/messages', { key, body });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.id as string;
  await eventually(
    async () => ((await api(stack, 'GET', `/v1/messages/${id}`, { key })).body.status === 'sent' ? true : undefined),
    30_000,
    'sent',
  );
  const got = peer.messages().find((m) => m.messageId === r.body.messageId);
  assert.ok(got, 'the SMTP server received the message');
  return { id, ...parts(got.raw) };
}

describe('tracking', () => {
  let key: string;
  let tenantId: string;
  before(async () => {
    tenantId = 'track-1';
    key = await createPeerTenant(stack, tenantId, peer, pki.caCert, {
      auth: { type: 'password', user: 'u', password: 'p' },
      tracking: { opens: true, clicks: true },
    });
  });

  test('a tracked message: links rewritten (not mailto/tel/anchors/unsubscribe block), pixel added, text readable; hits counted by class; events appended', async () => {
    const sent = await sendAndReceive(key, {
      from: 'support@acme.example',
      to: ['alice@customer.example'],
      subject: 'Shipped',
      text: 'Your order shipped: https://shop.example/orders/42',
      html: HTML,
      track: { opens: true, clicks: true },
    });
    const links = hrefs(sent.html);
    const tracked = links.filter((h) => h.startsWith(`${TRACK_BASE}/t/c/`));
    assert.equal(tracked.length, 2);
    assert.ok(links.includes('mailto:help@acme.example'));
    assert.ok(links.includes('tel:+34911234567'));
    assert.ok(links.includes('#details'));
    assert.ok(links.includes('https://acme.example/preferences'));
    assert.ok(!sent.html.includes('https://shop.example'), 'no original link left in the HTML');
    const pixel = /<img src="([^"]+\/t\/o\/[^"]+)"/.exec(sent.html)?.[1];
    assert.ok(pixel?.startsWith(`${TRACK_BASE}/t/o/`));
    assert.match(sent.text, /https:\/\/shop\.example\/orders\/42/);
    assert.doesNotMatch(sent.text, /\/t\/c\//);
    assert.doesNotMatch(sent.headers, /List-Unsubscribe/i, 'no unsubscribe headers unless asked');

    // A person opens it, clicks the first link; a link checker HEADs the second.
    const open = await fetch(local(pixel!), { headers: { 'user-agent': CHROME } });
    assert.equal(open.status, 200);
    assert.equal(open.headers.get('content-type'), 'image/gif');
    assert.match(open.headers.get('cache-control')!, /no-cache/);
    assert.deepEqual(Buffer.from(await open.arrayBuffer()), PIXEL_GIF);
    assert.equal(PIXEL_GIF.subarray(0, 6).toString(), 'GIF89a');
    const click = await fetch(local(tracked[0]!), { redirect: 'manual', headers: { 'user-agent': CHROME } });
    assert.equal(click.status, 302);
    assert.equal(click.headers.get('location'), 'https://shop.example/orders/42?utm=mail&x=1');
    const head = await fetch(local(tracked[1]!), { method: 'HEAD', redirect: 'manual', headers: { 'user-agent': CHROME } });
    assert.equal(head.status, 302);
    assert.equal(head.headers.get('location'), 'https://shop.example/track');

    const view = await eventually(
      async () => {
        const r = await api(stack, 'GET', `/v1/messages/${sent.id}`, { key });
        return r.body.tracking?.clicks.machine.total === 1 && r.body.tracking.clicks.human.total === 1 ? r.body : undefined;
      },
      10_000,
      'counts',
    );
    const t = view.tracking;
    assert.deepEqual(t.enabled, { opens: true, clicks: true, unsubscribe: false });
    assert.deepEqual(t.opens.human, { total: 1, unique: 1 });
    assert.deepEqual(t.opens.machine, { total: 0, unique: 0 });
    assert.deepEqual(t.clicks.human, { total: 1, unique: 1 });
    assert.deepEqual(t.clicks.machine, { total: 1, unique: 1 });
    assert.deepEqual(
      t.clicks.links.map((l: { url: string; human: { total: number }; machine: { total: number } }) => [
        l.url,
        l.human.total,
        l.machine.total,
      ]),
      [
        ['https://shop.example/orders/42?utm=mail&x=1', 1, 0],
        ['https://shop.example/track', 0, 1],
      ],
    );
    assert.equal(t.recipients[0].recipient, 0);
    assert.equal(t.rules.head_request, 1);

    const events = (await new EventRepository(stack.store.db).listForTenant(tenantId)).filter(
      (e) => e.messageId === sent.id && /^message\.(?:opened|clicked)$/.test(e.type),
    );
    const summary = events.map((e) => [e.type, e.data.machine, e.data.rule, e.data.recipient]).sort();
    assert.deepEqual(summary, [
      ['message.clicked', false, 'default', 'alice@customer.example'],
      ['message.clicked', true, 'head_request', 'alice@customer.example'],
      ['message.opened', false, 'default', 'alice@customer.example'],
    ]);

    // The human open and the human click reach the message's case; the scanner's HEAD does not.
    const caseId = (await stack.messages.get(tenantId, sent.id)).caseId!;
    const kinds = await eventually(
      async () => {
        const tl = (await stack.repos.cases.timeline(tenantId, caseId, { limit: 50 }))
          .map((e) => e.kind)
          .filter((k) => k === 'opened' || k === 'clicked');
        return tl.length >= 2 ? tl.sort() : undefined;
      },
      10_000,
      'case timeline',
    );
    assert.deepEqual(kinds, ['clicked', 'opened']);
  });

  test('forged or tampered tokens get 404 and never a redirect', async () => {
    const sent = await sendAndReceive(key, {
      from: 'support@acme.example',
      to: ['bob@customer.example'],
      subject: 'x',
      html: '<a href="https://shop.example/a">a</a>',
      track: { clicks: true, opens: true },
    });
    const link = local(hrefs(sent.html).find((h) => h.includes('/t/c/'))!);
    const pixel = local(/<img src="([^"]+)"/.exec(sent.html)![1]!);
    const token = link.split('/t/c/')[1]!;
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const forged = [
      flip(token, 3),
      flip(token, Math.floor(token.length / 2)),
      flip(token, token.length - 2),
      token.slice(0, -4),
      `${token}AAAA`,
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    ];
    for (const f of forged) {
      const r = await fetch(`${stack.baseUrl}/t/c/${f}`, { redirect: 'manual' });
      assert.equal(r.status, 404, f);
      assert.equal(r.headers.get('location'), null);
    }
    // A genuine open token used as a click, and a click token as a pixel.
    assert.equal((await fetch(`${stack.baseUrl}/t/c/${pixel.split('/t/o/')[1]}`, { redirect: 'manual' })).status, 404);
    assert.equal((await fetch(`${stack.baseUrl}/t/o/${token}`)).status, 404);
    // And nothing was counted for them.
    await stack.tracking.buffer.flush();
    const view = await api(stack, 'GET', `/v1/messages/${sent.id}`, { key });
    assert.equal(view.body.tracking.clicks.human.total + view.body.tracking.clicks.machine.total, 0);
  });

  test('a message that does not ask, or a tenant that does not allow, is not tracked', async () => {
    const plain = await sendAndReceive(key, {
      from: 'support@acme.example',
      to: ['carol@customer.example'],
      subject: 'x',
      html: '<a href="https://shop.example/a">a</a>',
    });
    assert.deepEqual(hrefs(plain.html), ['https://shop.example/a']);
    const noTrackKey = await createPeerTenant(stack, 'track-off', peer, pki.caCert, {
      auth: { type: 'password', user: 'u', password: 'p' },
    });
    const narrowed = await sendAndReceive(noTrackKey, {
      from: 'support@acme.example',
      to: ['carol@customer.example'],
      subject: 'y',
      html: '<a href="https://shop.example/b">b</a>',
      track: { opens: true, clicks: true },
    });
    assert.deepEqual(hrefs(narrowed.html), ['https://shop.example/b']);
    assert.doesNotMatch(narrowed.html, /\/t\/o\//);
  });

  test('one-click unsubscribe: RFC 8058 headers; GET only confirms; POST suppresses; the next send skips the address', async () => {
    const sent = await sendAndReceive(key, {
      from: 'news@acme.example',
      to: ['dave@customer.example'],
      subject: 'News',
      text: 'Hi',
      unsubscribe: { mailto: 'unsubscribe@acme.example' },
    });
    const lu = /^List-Unsubscribe: <([^>]+)>, <mailto:unsubscribe@acme\.example\?subject=unsubscribe>$/im.exec(sent.headers);
    assert.ok(lu, sent.headers);
    assert.match(sent.headers, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/im);
    const url = local(lu[1]!);
    assert.ok(url.startsWith(`${stack.baseUrl}/u/`));

    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<form method="post">/);
    assert.equal((await stack.suppressions.suppressedAmong(tenantId, ['dave@customer.example'])).size, 0, 'GET must not unsubscribe');
    const forged = await fetch(url.slice(0, -3) + 'AAA', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(forged.status, 404);

    const post = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(post.status, 200);
    const s = (await stack.suppressions.suppressedAmong(tenantId, ['dave@customer.example'])).get('dave@customer.example');
    assert.equal(s?.source, 'unsubscribe');

    const again = await api(stack, 'POST', '/v1/messages', {
      key,
      body: { from: 'news@acme.example', to: ['dave@customer.example'], subject: 'More news', text: 'Hi' },
    });
    assert.equal(again.status, 202);
    const done = await eventually(async () => {
      const r = await api(stack, 'GET', `/v1/messages/${again.body.id}`, { key });
      return ['suppressed', 'sent', 'failed'].includes(r.body.status) ? r.body : undefined;
    });
    assert.equal(done.status, 'suppressed');
    assert.equal(done.attempts.length, 0);
  });

  test('a batch written twice (a retry after an ambiguous store failure) is stored and announced once', async () => {
    const r = await api(stack, 'POST', '/v1/messages', {
      key,
      body: {
        from: 'support@acme.example',
        to: ['erin@customer.example'],
        subject: 'x',
        html: '<a href="https://shop.example/z">z</a>',
        track: { opens: true, clicks: true },
      },
    });
    assert.equal(r.status, 202);
    const id = r.body.id as string;
    const events = new EventRepository(stack.store.db);
    const write = createHitWriter({
      messages: stack.messages,
      tracking: stack.tracking.repo,
      events,
      scannerNetworks: [],
      maxEvents: 20,
      logger: pino({ level: 'silent' }),
    });
    const batch = [0, 1, 2].map((i) => ({
      id: `retry-${id}-${i}`,
      tenantId,
      messageId: id,
      kind: i === 2 ? ('click' as const) : ('open' as const),
      recipient: 0,
      link: i === 2 ? 0 : null,
      at: Date.now(),
      method: 'GET' as const,
      userAgent: CHROME,
      ip: '81.44.12.7',
      purpose: null,
    }));
    await write(batch);
    await write(batch);
    await write(batch.slice(1));
    const stored = await stack.tracking.repo.load(id);
    assert.equal(stored.hits.length, 3);
    const mine = (await events.listForTenant(tenantId, 1000)).filter(
      (e) => e.messageId === id && /^message\.(?:opened|clicked)$/.test(e.type),
    );
    assert.equal(mine.length, 3);
    const view = await api(stack, 'GET', `/v1/messages/${id}`, { key });
    assert.equal(view.body.tracking.opens.machine.total + view.body.tracking.opens.human.total, 2);
    // Not delivered yet: anything before delivery is machine.
    assert.equal(view.body.tracking.rules.before_delivery, 3);
  });

  test('a busy message: hits spread over small bucket documents, every one counted, also by a writer that starts cold', async () => {
    const r = await api(stack, 'POST', '/v1/messages', {
      key,
      body: { from: 'support@acme.example', to: ['frank@customer.example'], subject: 'x', html: '<p>x</p>', track: { opens: true } },
    });
    const id = r.body.id as string;
    const events = new EventRepository(stack.store.db);
    const mk = () =>
      createHitWriter({
        messages: stack.messages,
        tracking: stack.tracking.repo,
        events,
        scannerNetworks: [],
        maxEvents: 20,
        logger: pino({ level: 'silent' }),
      });
    const hits = Array.from({ length: 250 }, (_, i) => ({
      id: `busy-${i}`,
      tenantId,
      messageId: id,
      kind: 'open' as const,
      recipient: 0,
      link: null,
      at: Date.now() + i,
      method: 'GET' as const,
      userAgent: CHROME,
      ip: '81.44.12.7',
      purpose: null,
    }));
    const warm = mk();
    for (let i = 0; i < 180; i += 60) await warm(hits.slice(i, i + 60));
    await mk()(hits.slice(150, 250)); // a second process: overlaps 30 hits already stored
    const stored = await stack.tracking.repo.load(id);
    assert.equal(stored.hits.length, 250);
    assert.ok(stored.doc!.buckets >= 2, `buckets ${stored.doc!.buckets}`);
    const view = await api(stack, 'GET', `/v1/messages/${id}`, { key });
    // The message may be delivered while the hits are made: some are before delivery, some after.
    assert.equal(view.body.tracking.opens.machine.total + view.body.tracking.opens.human.total, 250);
  });

  test('unsubscribe for a message with several recipients is refused, naming the field', async () => {
    const r = await api(stack, 'POST', '/v1/messages', {
      key,
      body: { from: 'news@acme.example', to: ['a@customer.example', 'b@customer.example'], subject: 'x', text: 'y', unsubscribe: true },
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.errors[0].field, 'unsubscribe');
  });
});
