import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { BodySlots, checkDeclaredBody, readBody } from '../../src/inbound/body';
import { BusyError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../src/errors';

/**
 * The inbound body reader on a real HTTP server: what it returns, where it stops, and that a body
 * over the limit is not read further than the limit.
 */
async function withServer(
  limit: number,
  fn: (port: number, outcome: () => Promise<{ body?: Buffer; err?: Error; bytesRead: number }>) => Promise<void>,
): Promise<void> {
  let resolveOutcome!: (o: { body?: Buffer; err?: Error; bytesRead: number }) => void;
  const outcome = new Promise<{ body?: Buffer; err?: Error; bytesRead: number }>((r) => (resolveOutcome = r));
  const server = http.createServer((req, res) => {
    res.setHeader('Connection', 'close');
    readBody(req, limit).then(
      (body) => {
        resolveOutcome({ body, bytesRead: req.socket.bytesRead });
        res.end('ok');
      },
      (err: Error) => {
        resolveOutcome({ err, bytesRead: req.socket.bytesRead });
        res.statusCode = 413;
        res.end('no');
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn((server.address() as AddressInfo).port, () => outcome);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

function post(port: number, headers: Record<string, string>, chunks: Iterable<Buffer>): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', headers, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    const it = chunks[Symbol.iterator]();
    const pump = () => {
      for (let n = it.next(); !n.done; n = it.next()) if (!req.write(n.value)) return void req.once('drain', pump);
      req.end();
    };
    pump();
  });
}

function* repeat(chunk: Buffer, times: number): Generator<Buffer> {
  for (let i = 0; i < times; i++) yield chunk;
}

test('a body under the limit comes back whole; gzip is decoded', async () => {
  await withServer(1000, async (port, outcome) => {
    assert.equal(await post(port, {}, [Buffer.from('hello '), Buffer.from('world')]), 200);
    assert.equal((await outcome()).body?.toString(), 'hello world');
  });
  await withServer(1000, async (port, outcome) => {
    await post(port, { 'content-encoding': 'gzip' }, [gzipSync('compressed hello')]);
    assert.equal((await outcome()).body?.toString(), 'compressed hello');
  });
});

test('over the limit: refused as soon as it passes it, the rest left unread', async () => {
  const chunk = Buffer.alloc(64 * 1024, 1);
  await withServer(256 * 1024, async (port, outcome) => {
    await post(port, {}, repeat(chunk, 320)); // 20 MB
    const o = await outcome();
    assert.ok(o.err instanceof PayloadTooLargeError);
    assert.ok(o.bytesRead < 512 * 1024, `read ${o.bytesRead}`);
  });
});

test('a gzip bomb stops at the limit of decoded bytes', async () => {
  await withServer(100_000, async (port, outcome) => {
    await post(port, { 'content-encoding': 'gzip' }, [gzipSync(Buffer.alloc(10_000_000))]);
    assert.ok((await outcome()).err instanceof PayloadTooLargeError);
  });
});

test('declared size over the limit and unknown encodings are refused from the headers', () => {
  assert.throws(() => checkDeclaredBody({ 'content-length': '1001' }, 1000), PayloadTooLargeError);
  checkDeclaredBody({ 'content-length': '1000' }, 1000);
  assert.throws(() => checkDeclaredBody({ 'content-encoding': 'compress' }, 1000), UnsupportedMediaTypeError);
  checkDeclaredBody({ 'content-encoding': 'gzip' }, 1000);
});

test('slots: at most max at once; a release frees one, twice frees one', () => {
  const slots = new BodySlots(2);
  const a = slots.acquire();
  slots.acquire();
  assert.throws(() => slots.acquire(), BusyError);
  a();
  a();
  const c = slots.acquire();
  assert.throws(() => slots.acquire(), BusyError);
  c();
});
