import type { GridFSBucket, ObjectId } from 'mongodb';

/** Writes one buffer to GridFS under a chosen id; resolves once every chunk is stored. */
export function uploadBuffer(
  bucket: GridFSBucket,
  id: ObjectId,
  filename: string,
  content: Buffer,
  metadata: Record<string, unknown>,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const up = bucket.openUploadStreamWithId(id, filename, { metadata });
    up.once('finish', () => resolve());
    up.once('error', reject);
    up.end(content);
  });
}

export async function downloadBuffer(bucket: GridFSBucket, id: ObjectId): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of bucket.openDownloadStream(id)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
