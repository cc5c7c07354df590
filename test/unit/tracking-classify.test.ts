import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyHits, parseCidrs, type Hit } from '../../src/domain/tracking/classify';
import { summarize } from '../../src/domain/tracking/summary';

const DELIVERED = Date.parse('2026-11-23T10:00:00Z');
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const IPHONE_MAIL = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148';
let n = 0;
const hit = (over: Partial<Hit>): Hit => ({
  id: `h${++n}`,
  kind: 'open',
  recipient: 0,
  link: null,
  at: DELIVERED + 60 * 60_000,
  method: 'GET',
  userAgent: CHROME,
  ip: '81.44.12.7',
  purpose: null,
  ...over,
});
const ctx = { deliveredAt: DELIVERED };
const one = (h: Partial<Hit>, c: { deliveredAt: number | null } = ctx) => classifyHits([hit(h)], c)[0]!;

describe('classification: single-hit rules', () => {
  test('a person opening in a browser-based client an hour after delivery is human (default)', () => {
    assert.deepEqual(one({}), { cls: 'human', rule: 'default', proxied: false });
    assert.equal(one({ kind: 'click', link: 0 }).cls, 'human');
  });
  test('HEAD, prefetch headers and a missing User-Agent are machine', () => {
    assert.equal(one({ method: 'HEAD', kind: 'click', link: 0 }).rule, 'head_request');
    assert.equal(one({ purpose: 'prefetch' }).rule, 'prefetch_header');
    assert.equal(one({ purpose: 'prefetch;prerender' }).rule, 'prefetch_header');
    assert.equal(one({ userAgent: '' }).rule, 'no_user_agent');
  });
  test('a hit before delivery (or on a message never delivered) is machine', () => {
    assert.equal(one({ at: DELIVERED - 1 }).rule, 'before_delivery');
    assert.equal(one({}, { deliveredAt: null }).rule, 'before_delivery');
  });
  test('Apple MPP: bare Mozilla/5.0 from 17.0.0.0/8 opens are machine; the same UA elsewhere, or an Apple IP clicking, is not', () => {
    assert.deepEqual(one({ userAgent: 'Mozilla/5.0', ip: '17.58.101.3' }), { cls: 'machine', rule: 'apple_mpp', proxied: true });
    assert.equal(one({ userAgent: 'Mozilla/5.0', ip: '81.44.12.7' }).cls, 'human');
    assert.equal(one({ userAgent: IPHONE_MAIL, ip: '17.58.101.3', kind: 'click', link: 0 }).cls, 'human');
  });
  test('Gmail: the prefetcher is machine, the image proxy is a proxied human open, and a proxy never clicks for a person', () => {
    assert.equal(
      one({ userAgent: 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)' }).rule,
      'gmail_image_proxy',
    );
    assert.equal(
      one({ userAgent: 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)' }).proxied,
      true,
    );
    assert.equal(
      one({
        userAgent:
          'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0',
      }).rule,
      'gmail_prefetch',
    );
    assert.equal(
      one({ userAgent: 'YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html', kind: 'click', link: 0 }).rule,
      'proxy_click',
    );
  });
  test('known scanner agents are machine', () => {
    for (const ua of [
      'python-requests/2.31',
      'Go-http-client/1.1',
      'curl/8.5.0',
      'Mozilla/5.0 (compatible; Barracuda Sentinel)',
      'Microsoft Office Protocol Discovery',
      'Mozilla/5.0 (compatible; Googlebot/2.1)',
    ]) {
      assert.equal(one({ userAgent: ua, kind: 'click', link: 0 }).rule, 'scanner_agent', ua);
    }
    // Outlook desktop fetching images is a person reading.
    assert.equal(one({ userAgent: 'Mozilla/4.0 (compatible; ms-office; MSOffice 16)' }).cls, 'human');
  });
  test('clicks from Microsoft EOP ranges or configured ranges are machine; opens from there are not', () => {
    assert.equal(one({ kind: 'click', link: 0, ip: '40.107.22.51' }).rule, 'scanner_network');
    assert.equal(one({ kind: 'click', link: 0, ip: '2a01:111:f400:fe1e::1' }).rule, 'scanner_network');
    assert.equal(one({ kind: 'open', ip: '40.107.22.51' }).cls, 'human');
    const extra = parseCidrs(['203.0.113.0/24']);
    assert.equal(
      classifyHits([hit({ kind: 'click', link: 0, ip: '203.0.113.9' })], { ...ctx, scannerNetworks: extra })[0]!.rule,
      'scanner_network',
    );
    assert.equal(one({ kind: 'click', link: 0, ip: 'not-an-ip' }).cls, 'human');
  });
});

describe('classification: sequences', () => {
  test('scanner-like: every link of the message within seconds of delivery, including the footer → all machine', () => {
    const t0 = DELIVERED + 4_000;
    const hits = [0, 1, 2, 3].map((link, i) => hit({ kind: 'click', link, at: t0 + i * 700, userAgent: CHROME, ip: '52.1.2.3' }));
    const v = classifyHits(hits, ctx);
    assert.deepEqual(
      v.map((x) => x.rule),
      ['link_burst', 'link_burst', 'link_burst', 'link_burst'],
    );
  });
  test('human-like: an open, then two links minutes apart, and the same link twice → human', () => {
    const hits = [
      hit({ kind: 'open', at: DELIVERED + 20 * 60_000, userAgent: IPHONE_MAIL }),
      hit({ kind: 'click', link: 0, at: DELIVERED + 21 * 60_000 }),
      hit({ kind: 'click', link: 0, at: DELIVERED + 21 * 60_000 + 3_000 }),
      hit({ kind: 'click', link: 1, at: DELIVERED + 25 * 60_000 }),
    ];
    assert.deepEqual(
      classifyHits(hits, ctx).map((x) => x.cls),
      ['human', 'human', 'human', 'human'],
    );
  });
  test('two distinct links within seconds is not yet a burst (people do click twice)', () => {
    const hits = [hit({ kind: 'click', link: 0, at: DELIVERED + 60_000 }), hit({ kind: 'click', link: 1, at: DELIVERED + 62_000 })];
    assert.deepEqual(
      classifyHits(hits, ctx).map((x) => x.cls),
      ['human', 'human'],
    );
  });
  test('a proxy refetching the pixel within a minute: first human, then proxy_retry; later again human', () => {
    const ua = 'YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html';
    const hits = [
      hit({ userAgent: ua, at: DELIVERED + 60_000 }),
      hit({ userAgent: ua, at: DELIVERED + 61_000 }),
      hit({ userAgent: ua, at: DELIVERED + 10 * 60_000 }),
    ];
    assert.deepEqual(
      classifyHits(hits, ctx).map((x) => x.rule),
      ['yahoo_proxy', 'proxy_retry', 'yahoo_proxy'],
    );
  });
  test('order of input does not matter: verdicts come back aligned with the input', () => {
    const a = hit({ kind: 'click', link: 0, at: DELIVERED + 1000 + 0 });
    const b = hit({ kind: 'click', link: 1, at: DELIVERED + 1000 + 500 });
    const c = hit({ kind: 'click', link: 2, at: DELIVERED + 1000 + 900 });
    const d = hit({ kind: 'open', at: DELIVERED - 5 });
    const v = classifyHits([d, c, a, b], ctx);
    assert.deepEqual(
      v.map((x) => x.rule),
      ['before_delivery', 'link_burst', 'link_burst', 'link_burst'],
    );
  });
});

describe('summary', () => {
  test('totals, uniques per class, per link and per recipient; a human click counts as a human open', () => {
    const hits = [
      hit({ kind: 'open', userAgent: 'Mozilla/5.0', ip: '17.1.1.1', at: DELIVERED + 1000 }), // MPP
      hit({ kind: 'open', at: DELIVERED + 60_000 }),
      hit({ kind: 'open', at: DELIVERED + 120_000 }),
      hit({ kind: 'click', link: 1, at: DELIVERED + 130_000 }),
      hit({ kind: 'click', link: 1, at: DELIVERED + 140_000, method: 'HEAD' }),
      hit({ kind: 'click', link: 0, recipient: 1, at: DELIVERED + 150_000 }), // recipient 1 never loaded the pixel
    ];
    const s = summarize(hits, classifyHits(hits, ctx), ['https://a.example', 'https://b.example'], { 'open.machine': 5 });
    assert.deepEqual(s.opens, { human: { total: 2, unique: 2 }, machine: { total: 6, unique: 1 } });
    assert.deepEqual(s.clicks.human, { total: 2, unique: 2 });
    assert.deepEqual(s.clicks.machine, { total: 1, unique: 1 });
    assert.deepEqual(
      s.clicks.links.map((l) => [l.index, l.url, l.human.total, l.machine.total]),
      [
        [0, 'https://a.example', 1, 0],
        [1, 'https://b.example', 1, 1],
      ],
    );
    assert.equal(s.recipients.length, 2);
    assert.deepEqual(s.recipients[1]!.opens.human, { total: 0, unique: 1 });
    assert.equal(s.recipients[1]!.firstHumanOpenAt, DELIVERED + 150_000);
    assert.equal(s.recipients[0]!.firstHumanOpenAt, DELIVERED + 60_000);
    assert.equal(s.rules.apple_mpp, 1);
    assert.equal(s.rules.head_request, 1);
  });
  test('a shared body (no recipient in the token) counts readers by client', () => {
    const hits = [
      hit({ recipient: null, ip: '1.1.1.1' }),
      hit({ recipient: null, ip: '1.1.1.1' }),
      hit({ recipient: null, ip: '8.8.8.8' }),
    ];
    const s = summarize(hits, classifyHits(hits, ctx), []);
    assert.deepEqual(s.opens.human, { total: 3, unique: 2 });
    assert.deepEqual(s.recipients, []);
  });
});
