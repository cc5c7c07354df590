import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import type { Config } from '../config/env';
import { Keyring } from '../security/crypto';
import { EncryptionCodec } from './codec';
import { SEARCH_ATTRIBUTES } from './search-attributes';

export function keyringFrom(config: Config): Keyring {
  return new Keyring(config.encryption.keys, config.encryption.activeKeyId);
}

/** Loaded by path: the SDK requires it in the client and the worker (the workflow bundle gets it at build time). */
const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** Payloads and failure messages/stack traces encrypted (failure-converter.ts); the same on client and worker. */
export function dataConverter(keyring: Keyring): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(keyring)], failureConverterPath: FAILURE_CONVERTER_PATH };
}

function tlsOptions(config: Config): ConnectionOptions['tls'] {
  const tls = config.temporal.tls;
  if (!tls) return undefined;
  return {
    ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
    ...(tls.caPath ? { serverRootCACertificate: readFileSync(tls.caPath) } : {}),
    ...(tls.certPath && tls.keyPath ? { clientCertPair: { crt: readFileSync(tls.certPath), key: readFileSync(tls.keyPath) } } : {}),
  };
}

export async function connectTemporal(config: Config, keyring: Keyring): Promise<{ connection: Connection; client: Client }> {
  const tls = tlsOptions(config);
  const connection = await Connection.connect({
    address: config.temporal.address,
    ...(tls ? { tls } : {}),
    ...(config.temporal.apiKey ? { apiKey: config.temporal.apiKey } : {}),
    connectTimeout: '5s',
  });
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter(keyring) });
  return { connection, client };
}

export async function connectWorkerConnection(config: Config): Promise<NativeConnection> {
  const tls = tlsOptions(config);
  return NativeConnection.connect({
    address: config.temporal.address,
    ...(tls ? { tls } : {}),
    ...(config.temporal.apiKey ? { apiKey: config.temporal.apiKey } : {}),
  });
}

/**
 * Registers Cartero's search attributes if the namespace lacks them (a fresh cluster; the dev
 * server gets them from start flags). Idempotent; on Temporal Cloud they are created in the console.
 */
export async function ensureSearchAttributes(client: Client): Promise<void> {
  const { customAttributes } = await client.connection.operatorService.listSearchAttributes({
    namespace: client.options.namespace,
  });
  const missing = SEARCH_ATTRIBUTES.filter((a) => !(a.name in customAttributes));
  if (missing.length === 0) return;
  await client.connection.operatorService.addSearchAttributes({
    namespace: client.options.namespace,
    searchAttributes: Object.fromEntries(missing.map((a) => [a.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
}
