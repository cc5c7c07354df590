import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, startStack, type Stack } from '../support/stack';
import { tenantDeletionWorkflowId } from '../../src/temporal/handoffs/tenant-deletion';

/** Tenants API against the real Temporal dev server and FerretDB started by run-tests. */
let stack: Stack;
const admin = () => stack.adminKey;

const tenantBody = (over: Record<string, unknown> = {}) => ({
  name: 'Acme Corp',
  preset: 'microsoft365',
  domains: ['acme.example'],
  auth: { type: 'password', user: 'ops@acme.example', password: 'S3cret-app-password!' },
  ...over,
});

async function tenantCount(): Promise<number> {
  return stack.store.db.collection('tenants').countDocuments();
}

before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

describe('create, read, update, delete', () => {
  test('create returns the tenant with preset defaults, its API key and webhook secret once', async () => {
    const r = await api(stack, 'POST', '/v1/tenants', {
      key: admin(),
      body: tenantBody({ id: 'acme', webhook: { url: 'https://app.example/hooks' } }),
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.headers.get('location'), '/v1/tenants/acme');
    assert.match(r.body.apiKey, /^ck_[\w-]{43}$/);
    assert.match(r.body.webhookSecret, /^whsec_/);
    const t = r.body.tenant;
    assert.equal(t.id, 'acme');
    assert.equal(t.smtp.host, 'smtp.office365.com');
    assert.deepEqual(t.limits.perDay, { max: 10000, countBy: 'recipients' });
    assert.deepEqual(t.auth, { type: 'password', user: 'ops@acme.example', passwordSet: true });
    assert.match(t.inbound.key, /^ib_/);
    assert.deepEqual(t.webhook, { url: 'https://app.example/hooks', secretSet: true });
    assert.equal(t.status, 'active');

    const again = await api(stack, 'GET', '/v1/tenants/acme', { key: admin() });
    assert.equal(again.status, 200);
    assert.equal(again.body.name, 'Acme Corp');
    assert.equal(again.body.apiKey, undefined);
  });

  test('secrets are encrypted at rest and the API key is stored hashed', async () => {
    const r = await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'atrest' }) });
    assert.equal(r.status, 201);
    const raw = await stack.store.db.collection('tenants').findOne({ _id: 'atrest' as never });
    const serialized = JSON.stringify(raw);
    assert.ok(!serialized.includes('S3cret-app-password!'), 'password stored in clear');
    assert.ok(!serialized.includes(r.body.apiKey), 'API key stored in clear');
    assert.ok(!serialized.includes(r.body.webhookSecret), 'webhook secret stored in clear');
    assert.match(String((raw as any).auth.sealed.password), /^v2\.k1\./);
    // And the store can give it back to the activities that need it.
    const doc = await stack.tenants.get('atrest');
    assert.equal((stack.tenants.openAuth(doc) as { password: string }).password, 'S3cret-app-password!');
  });

  test('a duplicate id is a 409', async () => {
    await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'dup' }) });
    const r = await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'dup' }) });
    assert.equal(r.status, 409);
    assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  });

  test('PATCH merges, replaces auth whole, bumps the version, and never returns secrets', async () => {
    await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'patchy' }) });
    const r = await api(stack, 'PATCH', '/v1/tenants/patchy', {
      key: admin(),
      body: { smtp: { port: 25 }, limits: { perMinute: null }, auth: { type: 'password', user: 'new@acme.example', password: 'n3w' } },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.smtp.port, 25);
    assert.equal(r.body.smtp.host, 'smtp.office365.com');
    assert.equal(r.body.limits.perMinute, null);
    assert.deepEqual(r.body.limits.perDay, { max: 10000, countBy: 'recipients' });
    assert.equal(r.body.settingsVersion, 2);
    assert.deepEqual(r.body.auth, { type: 'password', user: 'new@acme.example', passwordSet: true });
    const doc = await stack.tenants.get('patchy');
    assert.equal((stack.tenants.openAuth(doc) as { password: string }).password, 'n3w');
  });

  test('DELETE: 202 with the deletion workflow; the tenant and its key are gone at once; the id is free once the workflow is done', async () => {
    const c = await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'gone' }) });
    const del = await api(stack, 'DELETE', '/v1/tenants/gone', { key: admin() });
    assert.equal(del.status, 202, JSON.stringify(del.body));
    assert.deepEqual(del.body, { id: 'gone', status: 'deleting', workflowId: tenantDeletionWorkflowId('gone') });
    assert.equal((await api(stack, 'GET', '/v1/tenants/gone', { key: admin() })).status, 404);
    assert.equal((await api(stack, 'GET', '/v1/tenants/gone', { key: c.body.apiKey })).status, 401);
    // While the workflow runs: the id is taken, and a repeated DELETE finds the same workflow.
    const again = await api(stack, 'DELETE', '/v1/tenants/gone', { key: admin() });
    assert.ok(again.status === 202 || again.status === 404, JSON.stringify(again.body));
    await stack.temporal.workflow.getHandle(tenantDeletionWorkflowId('gone')).result();
    assert.equal((await api(stack, 'DELETE', '/v1/tenants/gone', { key: admin() })).status, 404);
    assert.equal((await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'gone' }) })).status, 201);
  });

  test('rotating the API key revokes the old one', async () => {
    const c = await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'rotor' }) });
    // Used once first, so the API's key cache (TENANT_CACHE_MS) holds it: the rotation must still revoke it at once.
    assert.equal((await api(stack, 'GET', '/v1/tenants/rotor', { key: c.body.apiKey })).status, 200);
    const r = await api(stack, 'POST', '/v1/tenants/rotor/api-key', { key: admin() });
    assert.equal(r.status, 201);
    assert.equal((await api(stack, 'GET', '/v1/tenants/rotor', { key: c.body.apiKey })).status, 401);
    assert.equal((await api(stack, 'GET', '/v1/tenants/rotor', { key: r.body.apiKey })).status, 200);
  });
});

describe('keys and isolation', () => {
  test('missing or wrong key: 401 problem+json with WWW-Authenticate', async () => {
    for (const key of [undefined, 'nope', 'ck_forged', stack.adminKey + 'x']) {
      const r = await api(stack, 'GET', '/v1/tenants/acme', key ? { key } : {});
      assert.equal(r.status, 401, String(key));
      assert.equal(r.body.status, 401);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    // Unknown /v1 paths do not reveal themselves without a key.
    assert.equal((await api(stack, 'GET', '/v1/secret-admin-thing')).status, 401);
  });

  test("a tenant key sees its own tenant; another tenant's is 404; admin-only operations are 403", async () => {
    const a = await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'tenant-a' }) });
    const b = await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'tenant-b' }) });
    const keyA = a.body.apiKey as string;
    assert.equal((await api(stack, 'GET', '/v1/tenants/tenant-a', { key: keyA })).status, 200);
    assert.equal((await api(stack, 'GET', '/v1/tenants/tenant-b', { key: keyA })).status, 404);
    assert.equal((await api(stack, 'PATCH', '/v1/tenants/tenant-b', { key: keyA, body: { name: 'pwned' } })).status, 404);
    assert.equal((await api(stack, 'POST', '/v1/tenants/tenant-b/verify', { key: keyA })).status, 404);
    assert.equal((await api(stack, 'GET', '/v1/tenants/tenant-b', { key: b.body.apiKey })).body.name, 'Acme Corp');
    assert.equal((await api(stack, 'DELETE', '/v1/tenants/tenant-a', { key: keyA })).status, 403);
    assert.equal((await api(stack, 'POST', '/v1/tenants', { key: keyA, body: tenantBody() })).status, 403);
    const ownPatch = await api(stack, 'PATCH', '/v1/tenants/tenant-a', { key: keyA, body: { name: 'Acme A' } });
    assert.equal(ownPatch.status, 200);
    assert.equal((await api(stack, 'PATCH', '/v1/tenants/tenant-a', { key: keyA, body: { status: 'active' } })).status, 403);
  });
});

describe('bad input never reaches the store', () => {
  const cases: Array<{ name: string; body?: unknown; raw?: string; contentType?: string; status: number; field?: string }> = [
    { name: 'malformed JSON', raw: '{"name": "x",', status: 400, field: '(body)' },
    { name: 'a JSON array', raw: '[1,2]', status: 400, field: '(body)' },
    { name: 'unknown top-level field', body: tenantBody({ colour: 'red' }), status: 400, field: 'colour' },
    { name: 'unknown nested field', body: tenantBody({ smtp: { host: 'mail.acme.example', prot: 587 } }), status: 400, field: 'smtp.prot' },
    { name: 'wrong type', body: tenantBody({ smtp: { port: '587' } }), status: 400, field: 'smtp.port' },
    { name: 'port out of range', body: tenantBody({ smtp: { port: 65536 } }), status: 400, field: 'smtp.port' },
    { name: 'SMTP host with CR/LF', body: tenantBody({ smtp: { host: 'mail.acme.example\r\nDATA' } }), status: 400, field: 'smtp.host' },
    { name: 'unknown preset', body: tenantBody({ preset: 'hotmail' }), status: 400, field: 'preset' },
    { name: 'preset needing a host without one', body: tenantBody({ preset: 'cpanel' }), status: 400, field: 'smtp.host' },
    { name: 'missing auth', body: { name: 'x', domains: ['a.example'], preset: 'gmail' }, status: 400, field: 'auth' },
    { name: 'unknown auth type', body: tenantBody({ auth: { type: 'kerberos' } }), status: 400, field: 'auth.type' },
    {
      name: 'password with a newline',
      body: tenantBody({ auth: { type: 'password', user: 'u', password: 'a\nb' } }),
      status: 400,
      field: 'auth.password',
    },
    { name: 'no sending domain', body: tenantBody({ domains: [] }), status: 400, field: 'domains' },
    { name: 'bad tenant id', body: tenantBody({ id: 'Has Spaces' }), status: 400, field: 'id' },
    { name: 'non-http webhook', body: tenantBody({ webhook: { url: 'ftp://x.example/' } }), status: 400, field: 'webhook.url' },
    { name: 'oversized body', raw: JSON.stringify(tenantBody({ name: 'x'.repeat(2 * 1024 * 1024) })), status: 413 },
    { name: 'not JSON content type', raw: 'name=x', contentType: 'application/x-www-form-urlencoded', status: 415 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = await tenantCount();
      const r = await api(stack, 'POST', '/v1/tenants', {
        key: admin(),
        ...(c.raw !== undefined ? { rawBody: c.raw } : { body: c.body }),
        ...(c.contentType ? { contentType: c.contentType } : {}),
      });
      assert.equal(r.status, c.status, JSON.stringify(r.body));
      assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(r.body.status, c.status);
      if (c.field) {
        const fields = (r.body.errors as Array<{ field: string }>).map((e) => e.field);
        assert.ok(fields.includes(c.field), `expected ${c.field} in ${JSON.stringify(r.body.errors)}`);
        if (c.field !== '(body)') assert.ok(r.body.detail.includes(c.field));
      }
      assert.equal(await tenantCount(), before);
    });
  }

  test('PATCH with bad input changes nothing', async () => {
    await api(stack, 'POST', '/v1/tenants', { key: admin(), body: tenantBody({ id: 'stable' }) });
    const before = await stack.tenants.get('stable');
    for (const body of [{ smtp: { port: 0 } }, { preset: 'gmail' }, { smtp: { host: '10.0.0.5' } }, { auth: { type: 'password' } }]) {
      const r = await api(stack, 'PATCH', '/v1/tenants/stable', { key: admin(), body });
      assert.equal(r.status, 400, JSON.stringify(body));
    }
    const afterDoc = await stack.tenants.get('stable');
    assert.equal(afterDoc.settingsVersion, before.settingsVersion);
    assert.deepEqual(afterDoc.settings, before.settings);
  });

  test('private SMTP hosts are refused unless allowed (loopback is allowed in tests)', async () => {
    const r = await api(stack, 'POST', '/v1/tenants', {
      key: admin(),
      body: tenantBody({ preset: 'cpanel', smtp: { host: '192.168.1.10' } }),
    });
    assert.equal(r.status, 400);
    assert.match(r.body.errors[0].message, /private address/);
    const link = await api(stack, 'POST', '/v1/tenants', {
      key: admin(),
      body: tenantBody({ preset: 'cpanel', smtp: { host: '169.254.169.254' } }),
    });
    assert.equal(link.status, 400);
    const lo = await api(stack, 'POST', '/v1/tenants', {
      key: admin(),
      body: tenantBody({ preset: 'cpanel', smtp: { host: '127.0.0.1' } }),
    });
    assert.equal(lo.status, 201);
  });
});

describe('operations', () => {
  test('healthz, readyz with both dependencies (detail for the admin key and on the metrics listener), metrics', async () => {
    assert.equal((await api(stack, 'GET', '/healthz')).body, 'ok');
    const ready = await api(stack, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body, 'ready');
    const detailed = await api(stack, 'GET', '/readyz', { key: stack.adminKey });
    assert.equal(detailed.body.checks.store.ok, true);
    assert.equal(detailed.body.checks.temporal.ok, true);
    const internal = await api({ baseUrl: stack.metricsUrl }, 'GET', '/readyz');
    assert.equal(internal.status, 200);
    assert.equal(internal.body.checks.temporal.ok, true);
    const m = await fetch(stack.metricsUrl + '/metrics');
    const text = await m.text();
    assert.match(text, /cartero_http_requests_total\{method="GET",route="\/readyz",status="200"\} \d+/);
    assert.match(text, /cartero_api_process_cpu_seconds_total/);
  });

  test('openapi.json describes every route the app serves', async () => {
    const doc = (await api(stack, 'GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    const expected: Array<[string, string]> = [
      ['/v1/tenants', 'post'],
      ['/v1/tenants/{id}', 'get'],
      ['/v1/tenants/{id}', 'patch'],
      ['/v1/tenants/{id}', 'delete'],
      ['/v1/tenants/{id}/api-key', 'post'],
      ['/v1/tenants/{id}/verify', 'post'],
      ['/v1/tenants/{id}/oauth/{provider}/start', 'get'],
      ['/v1/oauth/callback', 'get'],
      ['/v1/messages', 'post'],
      ['/v1/messages', 'get'],
      ['/v1/messages/{id}', 'get'],
      ['/v1/messages/{id}', 'delete'],
      ['/v1/suppressions', 'get'],
      ['/v1/suppressions', 'post'],
      ['/v1/suppressions/{address}', 'get'],
      ['/v1/suppressions/{address}', 'delete'],
      ['/codec/decode', 'post'],
      ['/codec/encode', 'post'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
      ['/openapi.json', 'get'],
      ['/v1/webhooks/deliveries', 'get'],
      ['/v1/webhooks/deliveries/{id}', 'get'],
      ['/v1/webhooks/deliveries/{id}/redeliver', 'post'],
      ['/v1/webhooks/test', 'post'],
      ['/t/o/{token}', 'get'],
      ['/t/c/{token}', 'get'],
      ['/u/{token}', 'get'],
      ['/u/{token}', 'post'],
    ];
    for (const [p, m] of expected) assert.ok(doc.paths[p]?.[m], `${m.toUpperCase()} ${p} missing`);
    // Request schemas come from the validators: the strictness shows as additionalProperties:false.
    assert.equal(doc.components.schemas.TenantCreate.additionalProperties, false);
    assert.ok(doc.components.schemas.TenantCreate.properties.preset.enum.includes('microsoft365'));
    // And every documented path is actually served (not 404 for an unknown route).
    for (const [p, m] of expected) {
      const r = await api(stack, m.toUpperCase(), p.replace('{id}', 'acme').replace('{provider}', 'google'), { key: admin() });
      assert.ok(!(r.status === 404 && r.body?.detail?.startsWith('route ')), `${m} ${p} not served`);
    }
  });
});
