import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import express from 'express';
import { MongoNetworkError } from 'mongodb';
import pino from 'pino';
import { errorHandler } from '../../src/api/problem';
import { inboundWebhookRoutes, type InboundRouteDeps } from '../../src/api/routes/inbound';
import { NotFoundError } from '../../src/errors';

/**
 * The inbound key names a tenant; only a tenant that does not exist makes the key unknown (404). A
 * store that fails while looking the tenant up answers 5xx, so the provider retries the delivery
 * instead of dropping the mail as addressed to nobody.
 */
async function post(tenantLookup: () => Promise<never>): Promise<Response> {
  const deps = {
    inbound: { tenantForKey: async () => 't1' },
    tenants: { get: tenantLookup },
    bodyLimitBytes: 1024 * 1024,
    maxConcurrentBodies: 2,
  } as unknown as InboundRouteDeps;
  const app = express();
  app.use(inboundWebhookRoutes(deps));
  app.use(errorHandler(pino({ level: 'silent' })));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const { port } = server.address() as AddressInfo;
    return await fetch(`http://127.0.0.1:${port}/v1/inbound/mime/ib_${'a'.repeat(32)}`, {
      method: 'POST',
      headers: { 'content-type': 'message/rfc822' },
      body: 'From: a@b.test\r\n\r\nhi\r\n',
    });
  } finally {
    server.close();
  }
}

test('a store failure while finding the inbound key’s tenant is 503, not "unknown inbound key"', async () => {
  const res = await post(async () => {
    throw new MongoNetworkError('connection refused');
  });
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { detail: string }).detail, /store/);
});

test('a tenant that does not exist makes the inbound key unknown (404)', async () => {
  const res = await post(async () => {
    throw new NotFoundError('tenant', 't1');
  });
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as { detail: string }).detail, /inbound key/);
});
