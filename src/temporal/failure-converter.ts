import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failure messages and stack traces go to Temporal history encrypted, like every payload: the SDK
 * moves them into `encodedAttributes` (a payload the EncryptionCodec seals) and leaves
 * "Encoded failure" in clear. An activity's error message can quote a tenant's SMTP reply, an
 * address or a host name. Loaded by path (`failureConverterPath`) in the client, the worker and
 * the workflow bundle (src/tools/bundle-workflows.ts), which is why it is a module of its own.
 * Operators read them through the codec endpoint (the Web UI posts the attributes to /codec/decode).
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
