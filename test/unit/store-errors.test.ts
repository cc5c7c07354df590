import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MongoNetworkError } from 'mongodb';
import { isTransientStoreError } from '../../src/store/mongo';

test('a store connection the server closed is a transient store failure (503), also when the driver does not wrap it', () => {
  assert.equal(isTransientStoreError(new MongoNetworkError('connection closed')), true);
  // What the driver threw in the store-restart fault test: Node's writeAfterFIN error, unwrapped.
  const epipe = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' });
  assert.equal(isTransientStoreError(epipe), true);
  assert.equal(isTransientStoreError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), true);
  assert.equal(isTransientStoreError(new Error('a bug')), false);
  assert.equal(isTransientStoreError(Object.assign(new Error('no such file'), { code: 'ENOENT' })), false);
});
