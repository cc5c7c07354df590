import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { bounceMime, fill, linksHtml, manyHeadersMime, NDR_PREFIXES, nestedMime, reportMime, SHAPES, TARGETED } from '../support/hostile';
import { SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';
import { assertLinear, describeGrowth, growthSizes } from '../support/work-growth';

/**
 * Issue 12, item 2 (attack): hostile mail posted to a tenant's `mime` inbound provider, and hostile HTML and base64
 * posted to POST /v1/messages, must neither stall the API nor cost work that grows faster than the input. For each
 * shape, while the request runs, /healthz is polled every 50 ms and every answer must come within a second of the
 * previous one (a blocked event loop answers nothing until it is free); and the work for the request (CPU time of
 * the process, the parser threads included) may grow at most 3x per doubling of the mail (test/support/work-growth.ts).
 * Before the fix, a 0.5 MB MDaemon notice of `-->RCPT TO:<` held the event loop for minutes.
 */
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
let key: string;
let inboundKey: string;
const MIME_SECRET = 'ibs_attack_parsing_secret_0001';
const MB = 1024 * 1024;
const SIZES = growthSizes([MB / 8, MB / 4, MB / 2, MB, 2 * MB]);
/** Liveness: the longest a /healthz answer may take after the previous one (generous: a loaded 2-core machine). */
const MAX_HEALTHZ_GAP_MS = 1000;

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack({ INBOUND_BODY_LIMIT_BYTES: String(8 * MB), API_MESSAGE_BODY_LIMIT_BYTES: String(8 * MB) });
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  key = await createPeerTenant(stack, 'attack-parsing', peer, pki.caCert, { tracking: { opens: true, clicks: true } });
  const view = await api(stack, 'GET', '/v1/tenants/attack-parsing', { key });
  inboundKey = view.body.inbound.key;
  const r = await api(stack, 'PUT', '/v1/tenants/attack-parsing/inbound/mime', { key, body: { bearerToken: MIME_SECRET } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

/**
 * Runs `work` while polling /healthz every 50 ms; fails if any two consecutive answers (or the start and the first,
 * or the last and the end) are more than MAX_HEALTHZ_GAP_MS apart, or if one is not 200.
 */
async function whileHealthy<T>(what: string, work: () => Promise<T>): Promise<T> {
  let done = false;
  let last = Date.now();
  let worstGap = 0;
  const statuses: number[] = [];
  const poller = (async () => {
    while (!done) {
      const res = await fetch(`${stack.baseUrl}/healthz`);
      await res.arrayBuffer();
      statuses.push(res.status);
      const now = Date.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return await work();
  } finally {
    done = true;
    await poller;
    worstGap = Math.max(worstGap, Date.now() - last);
    assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `${what}: /healthz answered ${statuses.join(',')}`);
    assert.ok(worstGap <= MAX_HEALTHZ_GAP_MS, `${what}: /healthz went ${worstGap} ms without answering while the request ran`);
  }
}

let sequence = 0;
/** The shape as a message, with a Message-ID of its own so that no post is a duplicate of an earlier one. */
type MailMaker = (size: number, messageId: string) => string;

const MAILS: Record<string, MailMaker> = {
  ...Object.fromEntries(Object.entries(SHAPES).map(([shape, make]) => [shape, (size: number, id: string) => bounceMime(make(size), id)])),
  'an MDaemon notice of RCPT commands': (size, id) => bounceMime(NDR_PREFIXES.mdaemon + TARGETED['RCPT commands, unclosed']!(size), id),
  'an Exchange notice listing addresses': (size, id) => bounceMime(NDR_PREFIXES.exchange + TARGETED['address lines']!(size), id),
  'a sendmail notice of reasons': (size, id) => bounceMime(NDR_PREFIXES.sendmail + TARGETED['sendmail reasons']!(size), id),
  'a delivery-status part of blank lines': (size, id) => reportMime(fill('\r\n', size), id),
  'a diagnostic of "ip ip ip"': (size, id) =>
    reportMime(`Final-Recipient: rfc822; a@b.example\r\nAction: failed\r\nDiagnostic-Code: smtp; ${fill('ip ', size)}`, id),
  'nested multiparts (up to 500)': (size, id) => nestedMime(Math.round((500 * size) / (2 * MB)), id),
  'header lines (up to 10k)': (size, id) => manyHeadersMime(Math.round((10_000 * size) / (2 * MB)), id),
  'HTML with links': (size, id) => bounceMime(linksHtml(Math.round(size / 64)), id, 'Content-Type: text/html\r\n'),
};

async function postMime(raw: Buffer): Promise<{ status: number; body: any }> {
  const res = await fetch(`${stack.baseUrl}/v1/inbound/mime/${inboundKey}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MIME_SECRET}`, 'content-type': 'message/rfc822' },
    body: raw,
  });
  return { status: res.status, body: await res.json() };
}

describe('hostile mail posted to the mime inbound provider', () => {
  for (const [shape, make] of Object.entries(MAILS)) {
    test(shape, async (t) => {
      const g = await whileHealthy(shape, () =>
        assertLinear(
          `POST /v1/inbound/mime: ${shape}`,
          SIZES,
          (size) => size,
          async (size) => {
            const r = await postMime(Buffer.from(make(size, `attack-${sequence++}@mx.example`)));
            // Stored (200) or refused as unreadable (400); never a 5xx, never a crash.
            assert.ok(r.status === 200 || r.status === 400, `${shape} at ${size} bytes: ${r.status} ${JSON.stringify(r.body)}`);
            return r;
          },
        ),
      );
      t.diagnostic(describeGrowth(g));
    });
  }
});

describe('hostile HTML and attachments posted to POST /v1/messages', () => {
  const send = async (body: Record<string, unknown>, expected: number) => {
    const r = await api(stack, 'POST', '/v1/messages', {
      key,
      body: { from: 'support@acme.example', to: ['alice@customer.example'], subject: 'Hostile', ...body },
    });
    assert.equal(r.status, expected, JSON.stringify(r.body).slice(0, 500));
    return r;
  };
  test('10k links and more in tracked HTML', async (t) => {
    const g = await whileHealthy('tracked links', () =>
      assertLinear('POST /v1/messages: tracked links', [1250, 2500, 5000, 10_000, 20_000], linksHtml, (html) =>
        send({ html, track: { opens: true, clicks: true } }, 202),
      ),
    );
    t.diagnostic(describeGrowth(g));
  });
  test('HTML nested too deep for tracking is refused (400), quickly', async () => {
    await whileHealthy('nested HTML', async () => {
      const r = await send({ html: fill('<div>', 2 * MB), track: { opens: true, clicks: true } }, 400);
      assert.match(JSON.stringify(r.body.errors), /nests elements more than 512 deep/);
    });
  });
  test('base64 attachments of every shape', async (t) => {
    const shapes: Record<string, [(n: number) => string, number]> = {
      'base64 lines': [(n) => fill('QUFBQUFB\r\n', n), 202],
      'base64 lines, then a bad character': [(n) => `${fill('QUFBQUFB\r\n', n)}!`, 400],
      'padding, then blank lines': [(n) => `QQ==${fill(' \r\n', n)}`, 202],
      'CRLFs, then a bad character': [(n) => `${fill('\r\n', n)}!`, 400],
    };
    for (const [shape, [make, expected]] of Object.entries(shapes)) {
      const g = await whileHealthy(shape, () =>
        assertLinear(`POST /v1/messages: attachment of ${shape}`, SIZES, make, (contentBase64) =>
          send({ text: 'x', attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', contentBase64 }] }, expected),
        ),
      );
      t.diagnostic(`${shape}: ${describeGrowth(g)}`);
    }
  });
});
