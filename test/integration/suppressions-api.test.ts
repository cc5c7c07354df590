import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, startStack, type Stack } from '../support/stack';

/** `/v1/suppressions` against the real store: auth, validation, pagination, tenant isolation. */
let stack: Stack;
const keys: Record<string, string> = {};

before(async () => {
  stack = await startStack({}, { worker: false });
  for (const id of ['supp-a', 'supp-b']) {
    const r = await api(stack, 'POST', '/v1/tenants', {
      key: stack.adminKey,
      body: {
        id,
        name: id,
        domains: ['acme.example'],
        smtp: { host: 'localhost', port: 2525, security: 'starttls' },
        auth: { type: 'none' },
      },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    keys[id] = r.body.apiKey;
  }
});
after(async () => {
  await stack?.stop();
});

describe('/v1/suppressions', () => {
  test('add, read, list newest first with a cursor, remove', async () => {
    const key = keys['supp-a']!;
    const first = await api(stack, 'POST', '/v1/suppressions', { key, body: { address: 'One@Example.com', reason: 'asked by phone' } });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.address, 'one@example.com');
    assert.equal(first.body.source, 'manual');
    assert.equal(first.body.reason, 'asked by phone');
    const dup = await api(stack, 'POST', '/v1/suppressions', { key, body: { address: 'one@example.com', reason: 'another reason' } });
    assert.equal(dup.status, 200);
    assert.equal(dup.body.reason, 'asked by phone', 'the first entry stays');
    for (const a of ['two@example.com', 'three@example.com']) {
      assert.equal((await api(stack, 'POST', '/v1/suppressions', { key, body: { address: a, reason: 'manual' } })).status, 201);
    }

    const page1 = await api(stack, 'GET', '/v1/suppressions?limit=2', { key });
    assert.equal(page1.status, 200);
    assert.deepEqual(
      page1.body.items.map((i: { address: string }) => i.address),
      ['three@example.com', 'two@example.com'],
    );
    assert.equal(typeof page1.body.nextCursor, 'string');
    const page2 = await api(stack, 'GET', `/v1/suppressions?limit=2&cursor=${page1.body.nextCursor}`, { key });
    assert.deepEqual(
      page2.body.items.map((i: { address: string }) => i.address),
      ['one@example.com'],
    );
    assert.equal(page2.body.nextCursor, null);

    assert.equal((await api(stack, 'GET', '/v1/suppressions/ONE@example.com', { key })).body.address, 'one@example.com');
    assert.equal((await api(stack, 'DELETE', '/v1/suppressions/one@example.com', { key })).status, 204);
    assert.equal((await api(stack, 'DELETE', '/v1/suppressions/one@example.com', { key })).status, 404);
    assert.equal((await api(stack, 'GET', '/v1/suppressions/one@example.com', { key })).status, 404);
  });

  test('tenants are isolated; the admin names the tenant', async () => {
    await api(stack, 'POST', '/v1/suppressions', { key: keys['supp-a']!, body: { address: 'only-a@example.com', reason: 'x' } });
    assert.equal((await api(stack, 'GET', '/v1/suppressions/only-a@example.com', { key: keys['supp-b']! })).status, 404);
    assert.equal((await api(stack, 'DELETE', '/v1/suppressions/only-a@example.com', { key: keys['supp-b']! })).status, 404);
    assert.equal((await api(stack, 'GET', '/v1/suppressions?tenantId=supp-a', { key: keys['supp-b']! })).status, 404);
    const list = await api(stack, 'GET', '/v1/suppressions', { key: keys['supp-b']! });
    assert.deepEqual(list.body.items, []);

    const admin = await api(stack, 'GET', '/v1/suppressions/only-a@example.com?tenantId=supp-a', { key: stack.adminKey });
    assert.equal(admin.status, 200);
    const noTenant = await api(stack, 'GET', '/v1/suppressions', { key: stack.adminKey });
    assert.equal(noTenant.status, 400);
    assert.equal(noTenant.body.errors[0].field, 'tenantId');
    const added = await api(stack, 'POST', '/v1/suppressions', {
      key: stack.adminKey,
      body: { tenantId: 'supp-b', address: 'by-admin@example.com', reason: 'ops' },
    });
    assert.equal(added.status, 201);
    assert.equal(added.body.tenantId, 'supp-b');
  });

  test('bad input: 400 naming the field; no key: 401', async () => {
    const key = keys['supp-a']!;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ address: 'not-an-address', reason: 'x' }, 'address'],
      [{ address: 'a@example.com' }, 'reason'],
      [{ address: 'a@example.com', reason: '' }, 'reason'],
      [{ address: 'a@example.com', reason: 'x', source: 'bounce' }, 'source'],
      [{ address: 'a\r\n@example.com', reason: 'x' }, 'address'],
    ];
    for (const [body, field] of cases) {
      const r = await api(stack, 'POST', '/v1/suppressions', { key, body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(
        r.body.errors.some((e: { field: string }) => e.field === field),
        `${JSON.stringify(body)} → ${JSON.stringify(r.body.errors)}`,
      );
    }
    assert.equal((await api(stack, 'GET', '/v1/suppressions?limit=0', { key })).body.errors[0].field, 'limit');
    assert.equal((await api(stack, 'GET', '/v1/suppressions?cursor=bm9wZQ', { key })).body.errors[0].field, 'cursor');
    assert.equal((await api(stack, 'GET', '/v1/suppressions/nope', { key })).status, 400);
    // A path Express cannot percent-decode is the client's error, answered as a problem, not a 500.
    const broken = await fetch(`${stack.baseUrl}/v1/suppressions/100%25zz%`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(broken.status, 400);
    assert.match(broken.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(((await broken.json()) as { errors: Array<{ field: string }> }).errors[0]!.field, '(path)');
    assert.equal((await api(stack, 'GET', '/v1/suppressions')).status, 401);
  });
});
