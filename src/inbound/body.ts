import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { BusyError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../errors';

/**
 * Reading an inbound webhook body, only once the request has earned it (key, provider and header
 * credentials checked by the caller): a declared size over the limit is refused before a byte is
 * read, a body that grows past it is cut off the moment it does (nothing beyond the limit is kept,
 * and the rest is never read), and a process reads only so many bodies at once.
 */

const DECODERS: Record<string, (() => Transform) | null> = {
  identity: null,
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

function encodingOf(headers: IncomingHttpHeaders): string {
  return (headers['content-encoding'] ?? 'identity').trim().toLowerCase() || 'identity';
}

/** What the headers say about the body, checked before it is read: 413 for a declared size over `limit`, 415 for an unknown encoding. */
export function checkDeclaredBody(headers: IncomingHttpHeaders, limit: number): void {
  const declared = headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new PayloadTooLargeError(`the body declares ${declared} bytes; the limit is ${limit}`);
  }
  const encoding = encodingOf(headers);
  if (!(encoding in DECODERS)) throw new UnsupportedMediaTypeError(`unsupported Content-Encoding "${encoding.slice(0, 40)}"`);
}

/** The client went away mid-body: there is no one to answer (the error handler knows this type). */
function aborted(): Error {
  return Object.assign(new Error('the client closed the connection before its body was complete'), { type: 'request.aborted' });
}

/**
 * The body, at most `limit` bytes on the wire and at most `limit` bytes decoded (a gzip bomb stops
 * at the limit too). Over the limit: PayloadTooLargeError at once, the request paused and what was
 * read dropped; the caller's answer then closes the connection instead of reading the rest.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const makeDecoder = DECODERS[encodingOf(req.headers)];
  if (makeDecoder === undefined) return Promise.reject(new UnsupportedMediaTypeError('unsupported Content-Encoding'));
  // Gone while its key and credentials were being looked up: 'close' has been and will not come again.
  if (req.destroyed) return Promise.reject(aborted());
  const decoder = makeDecoder ? makeDecoder() : null;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let wire = 0;
    let settled = false;
    const tooLarge = () => new PayloadTooLargeError(`the body exceeds the ${limit}-byte limit`);
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      req.off('data', onWire);
      req.off('end', onWireEnd);
      req.off('close', onClose);
      req.off('error', onError);
      if (err) {
        req.pause();
        decoder?.destroy();
        chunks.length = 0;
        reject(err);
      } else {
        resolve(Buffer.concat(chunks, size));
      }
    };
    const collect = (c: Buffer) => {
      size += c.length;
      if (size > limit) settle(tooLarge());
      else chunks.push(c);
    };
    const onWire = (c: Buffer) => {
      wire += c.length;
      if (wire > limit) settle(tooLarge());
      else if (decoder) decoder.write(c);
      else collect(c);
    };
    const onWireEnd = () => {
      if (decoder) decoder.end();
      else settle(null);
    };
    const onClose = () => {
      if (!req.complete) settle(aborted());
    };
    const onError = () => settle(aborted());
    if (decoder) {
      decoder.on('data', collect);
      decoder.on('end', () => settle(null));
      decoder.on('error', (e: Error) =>
        settle(new ValidationError(`unreadable compressed body (${e.message})`, [{ field: '(body)', message: 'does not decompress' }])),
      );
    }
    req.on('data', onWire);
    req.on('end', onWireEnd);
    req.on('close', onClose);
    req.on('error', onError);
  });
}

/** A per-process cap on bodies being read and handled at once. */
export class BodySlots {
  private inUse = 0;

  constructor(private readonly max: number) {}

  /** A release function, or BusyError (503, Retry-After) when every slot is taken. */
  acquire(): () => void {
    if (this.inUse >= this.max) {
      throw new BusyError(`already reading ${this.max} inbound bodies (INBOUND_MAX_CONCURRENT); retry shortly`);
    }
    this.inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
    };
  }
}

/**
 * The body of an admitted webhook request, then `handle(body)` inside one of `slots`: the declared
 * size first, then a place, then the bytes under `limit`. Until the body has been read any answer
 * closes the connection (the caller sets `Connection: close` before admitting): otherwise Node would
 * read, and throw away, the rest of the very body refused.
 */
export async function withBody<T>(
  req: IncomingMessage,
  res: { removeHeader(name: string): void },
  slots: BodySlots,
  limit: number,
  handle: (body: Buffer) => Promise<T>,
): Promise<T> {
  checkDeclaredBody(req.headers, limit);
  const release = slots.acquire();
  try {
    const body = await readBody(req, limit);
    res.removeHeader('Connection');
    return await handle(body);
  } finally {
    release();
  }
}
