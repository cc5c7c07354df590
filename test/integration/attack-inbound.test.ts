import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { mailgunSigned, replyMime } from '../support/inbound-fixtures';
import { eventually } from '../support/smtp-peer';
import { api, startStack, type Stack } from '../support/stack';

/**
 * Issue 12, items 3 and 4: what anyone who can reach the public inbound endpoint can do.
 * - A provider the tenant never enabled must not take posts (it used to, unauthenticated: forged
 *   replies landed in cases and went out as webhooks), and must not say whether it exists (404).
 * - Nothing is read off the wire before the key, the provider and whatever credentials the headers
 *   carry are checked; bodies stop at the limit; a process reads only so many bodies at once.
 * The API runs in this process, so the bytes it read off its sockets and its memory are measured
 * directly.
 */
const MAILGUN_KEY = 'mailgun-signing-key-attack-0001';
const MIME_SECRET = 'ibs_attack_mime_secret_000000001';
const MB = 1024 * 1024;

interface Posted {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Body bytes the client handed to its socket before the answer came (or the connection ended). */
  written: number;
  ms: number;
}

/**
 * POSTs a generated body of `size` bytes over a connection of its own, honouring backpressure: the
 * body is never allocated (one 64 KB chunk is written again and again), so what the server does
 * not read stays unsent. Stops writing as soon as the answer arrives.
 */
function streamPost(
  url: string,
  headers: Record<string, string>,
  size: number,
  opts: { declareLength?: boolean; hold?: AbortSignal } = {},
): Promise<Posted> {
  const started = Date.now();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { ...headers, ...(opts.declareLength ? { 'content-length': String(size) } : {}) },
    });
    const pump = () => {
      while (!answered && written < size) {
        if (opts.hold?.aborted === false && written >= 1024) return; // hold the request open mid-body
        const n = Math.min(chunk.length, size - written);
        written += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered && written >= size) req.end();
    };
    req.on('response', (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts).toString(),
          written,
          ms: Date.now() - started,
        }),
      );
      res.on('error', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts).toString(),
          written,
          ms: Date.now() - started,
        }),
      );
    });
    // Writing into a connection the server closed fails with EPIPE/ECONNRESET after the answer: expected.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.on('close', () => {
      if (!answered) reject(new Error('connection closed before an answer'));
    });
    opts.hold?.addEventListener('abort', () => req.destroy());
    pump();
  });
}

/** Sockets the server accepted while `fn` ran, and the bytes it read off them. */
async function measured<T>(stack: Stack, fn: () => Promise<T>): Promise<{ result: T; bytesRead: number; rssGrowth: number }> {
  const sockets: Socket[] = [];
  const onConnection = (s: Socket) => sockets.push(s);
  stack.server.on('connection', onConnection);
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    const result = await fn();
    return {
      result,
      bytesRead: sockets.reduce((n, s) => n + s.bytesRead, 0),
      rssGrowth: Math.max(peak, process.memoryUsage().rss) - baseline,
    };
  } finally {
    clearInterval(sampler);
    stack.server.off('connection', onConnection);
  }
}

async function createTenant(stack: Stack, id: string): Promise<{ key: string; inboundKey: string }> {
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: id,
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: 2, security: 'starttls' },
      auth: { type: 'password', user: 'u', password: 'p' },
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const view = await api(stack, 'GET', `/v1/tenants/${id}`, { key: r.body.apiKey });
  return { key: r.body.apiKey as string, inboundKey: view.body.inbound.key as string };
}

async function traces(stack: Stack, tenantId: string) {
  const db = stack.store.db;
  return {
    inbound: await db.collection('inbound_messages').countDocuments({ tenantId }),
    files: await db.collection('inbound_files.files').countDocuments({ 'metadata.tenantId': tenantId }),
    cases: await db.collection('cases').countDocuments({ tenantId }),
    events: (await stack.events.listForTenant(tenantId, 1000)).filter((e) => e.type !== 'webhook.test').length,
  };
}

const postmarkReply = (messageId: string) =>
  JSON.stringify({
    From: 'alice@customer.example',
    FromFull: { Email: 'alice@customer.example', Name: 'Alice', MailboxHash: '' },
    ToFull: [{ Email: 'support@acme.example', Name: '', MailboxHash: '' }],
    Subject: 'Re: your invoice',
    MessageID: `pm-${messageId}`,
    TextBody: 'Please pay to this other account instead.',
    Headers: [{ Name: 'Message-ID', Value: messageId }],
    Attachments: [],
  });

describe('a provider the tenant did not enable, and what is read before anything is checked', () => {
  let stack: Stack;
  let t: { key: string; inboundKey: string };
  const TENANT = 'attack-inbound-a';

  before(async () => {
    stack = await startStack({}, { worker: false });
    t = await createTenant(stack, TENANT);
    // The tenant set up Mailgun, and only Mailgun.
    const r = await api(stack, 'PUT', `/v1/tenants/${TENANT}/inbound/mailgun`, { key: t.key, body: { signingKey: MAILGUN_KEY } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
  after(async () => {
    await stack?.stop();
  });

  test('(a) posts to providers the tenant did not enable → 404 like an unknown key; nothing stored, no case, no event', async () => {
    const before = await traces(stack, TENANT);
    const url = (p: string) => `${stack.baseUrl}/v1/inbound/${p}/${t.inboundKey}`;
    const forged = await fetch(url('postmark'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: postmarkReply('<forged-1@evil.example>'),
    });
    const forgedBody = (await forged.json()) as { detail: string };
    assert.equal(forged.status, 404, JSON.stringify(forgedBody));
    const brevo = await fetch(url('brevo'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        items: [{ MessageId: '<forged-2@evil.example>', From: { Address: 'a@evil.example' }, Subject: 'x', RawTextBody: 'x' }],
      }),
    });
    assert.equal(brevo.status, 404);
    const sendgrid = await fetch(url('sendgrid'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([
        ['headers', 'Message-ID: <forged-3@evil.example>'],
        ['from', 'a@evil.example'],
        ['text', 'x'],
      ]).toString(),
    });
    assert.equal(sendgrid.status, 404);
    for (const p of ['mime', 'ses']) assert.equal((await fetch(url(p), { method: 'POST', body: 'x' })).status, 404, p);
    // The same answer as a key that does not exist and a provider that does not exist: nothing to learn.
    const unknownKey = await fetch(`${stack.baseUrl}/v1/inbound/postmark/ib_${'z'.repeat(32)}`, { method: 'POST', body: 'x' });
    const unknownProvider = await fetch(url('gmail'), { method: 'POST', body: 'x' });
    const strip = (b: Record<string, unknown>) => ({ ...b, instance: undefined });
    assert.deepEqual(strip((await unknownKey.json()) as Record<string, unknown>), strip(forgedBody));
    assert.deepEqual(strip((await unknownProvider.json()) as Record<string, unknown>), strip(forgedBody));
    assert.deepEqual(await traces(stack, TENANT), before);
  });

  test('(a) enabling needs the provider’s authentication; once enabled, wrong credentials are 401 and right ones store', async () => {
    const put = (provider: string, body: unknown) => api(stack, 'PUT', `/v1/tenants/${TENANT}/inbound/${provider}`, { key: t.key, body });
    assert.equal((await put('brevo', { apiKey: 'xkeysib-only' })).status, 400, 'brevo without basic auth or bearer');
    assert.equal((await put('sendgrid', {})).status, 400, 'sendgrid without basic auth');
    assert.equal((await fetch(`${stack.baseUrl}/v1/inbound/brevo/${t.inboundKey}`, { method: 'POST', body: '{}' })).status, 404);

    assert.equal((await put('postmark', { username: 'pm', password: 'postmark-pass-1' })).status, 200);
    const url = `${stack.baseUrl}/v1/inbound/postmark/${t.inboundKey}`;
    const basic = (p: string) => `Basic ${Buffer.from(`pm:${p}`).toString('base64')}`;
    const noAuth = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: postmarkReply('<x-1@customer.example>'),
    });
    assert.equal(noAuth.status, 401);
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('nope-nope') },
      body: postmarkReply('<x-2@customer.example>'),
    });
    assert.equal(wrong.status, 401);
    const ok = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('postmark-pass-1') },
      body: postmarkReply('<x-3@customer.example>'),
    });
    assert.equal(ok.status, 200, await ok.text());
    // Disabled again: 404 again.
    assert.equal((await api(stack, 'DELETE', `/v1/tenants/${TENANT}/inbound/postmark`, { key: t.key })).status, 204);
    const gone = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('postmark-pass-1') },
      body: postmarkReply('<x-4@customer.example>'),
    });
    assert.equal(gone.status, 404);
    // Mailgun, which it did enable, still works.
    const sig = mailgunSigned(MAILGUN_KEY);
    const mg = await fetch(`${stack.baseUrl}/v1/inbound/mailgun/${t.inboundKey}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([
        ['recipient', 'support@acme.example'],
        ['body-mime', replyMime({ messageId: '<mg-ok@customer.example>' })],
        ['timestamp', sig.timestamp],
        ['token', sig.token],
        ['signature', sig.signature],
      ]).toString(),
    });
    assert.equal(mg.status, 200, await mg.text());
  });

  test('(b) twenty parallel 63 MB bodies to a random key: 404 each, quickly, without reading them', async (t) => {
    const size = 63 * MB;
    const { result, bytesRead, rssGrowth } = await measured(stack, () =>
      Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          streamPost(`${stack.baseUrl}/v1/inbound/mime/ib_${String(i).padStart(32, 'r')}`, { 'content-type': 'message/rfc822' }, size, {
            declareLength: i % 2 === 0,
          }),
        ),
      ),
    );
    const total = 20 * size;
    t.diagnostic(
      `server read ${bytesRead} of ${total} bytes; API process grew ${Math.round(rssGrowth / MB)} MB; slowest answer ${Math.max(...result.map((r) => r.ms))} ms`,
    );
    assert.ok(bytesRead < 20 * 256 * 1024, `the server read ${bytesRead} bytes of ${total}`);
    assert.ok(rssGrowth < 100 * MB, `the API process grew by ${Math.round(rssGrowth / MB)} MB`);
    for (const r of result) {
      assert.equal(r.status, 404, r.body);
      assert.ok(r.ms < 5000, `answered after ${r.ms} ms`);
    }
    assert.ok(
      result.every((r) => r.written < size),
      `clients sent ${result.map((r) => Math.round(r.written / MB)).join(',')} MB`,
    );
  });

  test('(b) a known key with a provider it did not enable: 404 without reading the body either', async () => {
    const { result, bytesRead } = await measured(stack, () =>
      streamPost(`${stack.baseUrl}/v1/inbound/postmark/${t.inboundKey}`, { 'content-type': 'application/json' }, 63 * MB),
    );
    assert.equal(result.status, 404);
    assert.ok(bytesRead < 4 * MB, `the server read ${bytesRead} bytes`);
  });
});

describe('body limit and the cap on bodies read at once', () => {
  let stack: Stack;
  let t: { key: string; inboundKey: string };
  const TENANT = 'attack-inbound-b';
  const LIMIT = MB;
  let url: string;
  const auth = { authorization: `Bearer ${MIME_SECRET}`, 'content-type': 'message/rfc822' };

  before(async () => {
    stack = await startStack({ INBOUND_BODY_LIMIT_BYTES: String(LIMIT), INBOUND_MAX_CONCURRENT: '2' }, { worker: false });
    t = await createTenant(stack, TENANT);
    const r = await api(stack, 'PUT', `/v1/tenants/${TENANT}/inbound/mime`, { key: t.key, body: { bearerToken: MIME_SECRET } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    url = `${stack.baseUrl}/v1/inbound/mime/${t.inboundKey}`;
  });
  after(async () => {
    await stack?.stop();
  });

  test('(c) an over-limit body to a valid key → 413 after reading at most the limit', async (t) => {
    const before = await traces(stack, TENANT);
    const streamed = await measured(stack, () => streamPost(url, auth, 40 * MB));
    assert.equal(streamed.result.status, 413, streamed.result.body);
    t.diagnostic(`over the ${LIMIT}-byte limit: the server read ${streamed.bytesRead} bytes of 40 MB`);
    assert.ok(streamed.bytesRead < LIMIT + 512 * 1024, `the server read ${streamed.bytesRead} bytes (limit ${LIMIT})`);
    assert.ok(streamed.result.written < 40 * MB);
    // Declared too large: refused from the header alone.
    const declared = await measured(stack, () => streamPost(url, auth, 40 * MB, { declareLength: true }));
    assert.equal(declared.result.status, 413);
    assert.ok(declared.bytesRead < 512 * 1024, `the server read ${declared.bytesRead} bytes`);
    // Wrong credentials with a big body: 401, body unread.
    const wrong = await measured(stack, () => streamPost(url, { ...auth, authorization: 'Bearer wrong-secret' }, 40 * MB));
    assert.equal(wrong.result.status, 401);
    assert.ok(wrong.bytesRead < 512 * 1024, `the server read ${wrong.bytesRead} bytes`);
    assert.deepEqual(await traces(stack, TENANT), before);
  });

  test('(d) beyond INBOUND_MAX_CONCURRENT bodies at once → 503 with Retry-After, until one finishes', async () => {
    const hold = new AbortController();
    const answers: Array<number | 'closed'> = [];
    // Two authenticated senders that start a body and stall mid-way hold both places.
    const stall = () =>
      streamPost(url, auth, 500_000, { declareLength: true, hold: hold.signal }).then(
        (x) => void answers.push(x.status),
        () => void answers.push('closed'),
      );
    const stalled = [stall(), stall()];
    // Their key and credentials are looked up before they take their places.
    await new Promise((r) => setTimeout(r, 1500));
    let n = 0;
    const small = () => replyMime({ messageId: `<cap-${++n}-${Date.now()}@customer.example>` });
    const busy = await fetch(url, { method: 'POST', headers: auth, body: small() });
    assert.equal(busy.status, 503, await busy.text());
    assert.ok(Number(busy.headers.get('retry-after')) > 0, 'Retry-After');
    assert.deepEqual(answers, [], 'the stalled senders are still being read');
    // The stalled senders give up: their places are free again.
    hold.abort();
    await Promise.all(stalled);
    assert.deepEqual(answers, ['closed', 'closed']);
    const ok = await eventually(
      async () => {
        const r = await fetch(url, { method: 'POST', headers: auth, body: small() });
        await r.text();
        return r.status === 200 ? r : undefined;
      },
      15_000,
      'a body to be read once the stalled ones are gone',
    );
    assert.equal(ok.status, 200);
  });
});
