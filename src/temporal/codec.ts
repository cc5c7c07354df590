import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Keyring } from '../security/crypto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const ENCODING = Buffer.from(ENCRYPTED_ENCODING);
const KEY_ID = 'encryption-key-id';

/**
 * Encrypts every Temporal payload (inputs, results, signals, failures' details, memos) with
 * AES-256-GCM so nothing reaches Temporal history in clear. The whole original Payload proto is
 * sealed, metadata included. The key id travels in metadata so old histories stay readable after
 * rotation. Decoding leaves unencrypted payloads alone (histories written before the codec).
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const { kid, iv, tag, ciphertext } = this.keyring.encryptBytes(plain);
      return {
        metadata: { encoding: ENCODING, [KEY_ID]: Buffer.from(kid) },
        data: Buffer.concat([iv, ciphertext, tag]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const encoding = p.metadata?.encoding;
      if (!encoding || Buffer.from(encoding).toString() !== ENCRYPTED_ENCODING) return p;
      const kidBytes = p.metadata?.[KEY_ID];
      if (!kidBytes || !p.data) throw new Error('encrypted payload without key id or data');
      const data = Buffer.from(p.data);
      if (data.length < 28) throw new Error('encrypted payload too short');
      const plain = this.keyring.decryptBytes(
        Buffer.from(kidBytes).toString(),
        data.subarray(0, 12),
        data.subarray(data.length - 16),
        data.subarray(12, data.length - 16),
      );
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
