import assert from 'node:assert/strict';
import { test } from 'node:test';
import { messageCreateSchema } from '../../src/domain/message';
import { canonicalJson, requestHash } from '../../src/outbound/idempotency';

test('canonical JSON: key order does not matter, array order and values do', () => {
  assert.equal(canonicalJson({ b: 1, a: [2, { d: null, c: 'x' }] }), '{"a":[2,{"c":"x","d":null}],"b":1}');
  assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  assert.notEqual(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }));
});

test('the request hash binds the validated body and the tenant', () => {
  const body = (o: Record<string, unknown>) =>
    messageCreateSchema.parse({ from: 'a@acme.example', to: ['b@customer.example'], subject: 's', text: 't', idempotencyKey: 'k', ...o });
  const h = requestHash('t1', body({}));
  assert.equal(requestHash('t1', body({})), h);
  assert.notEqual(requestHash('t2', body({})), h);
  assert.notEqual(requestHash('t1', body({ to: ['c@customer.example'] })), h);
  assert.notEqual(requestHash('t1', body({ text: 'u' })), h);
});
