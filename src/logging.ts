import pino, { type Logger } from 'pino';

/**
 * Paths pino censors wherever they appear in a log object. Secrets should never be passed to a
 * logger at all; this is the net under that rule (request bodies, errors carrying configs).
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'clientSecret',
  '*.clientSecret',
  '*.*.clientSecret',
  'refreshToken',
  '*.refreshToken',
  '*.*.refreshToken',
  'accessToken',
  '*.accessToken',
  '*.*.accessToken',
  'serviceAccountPrivateKey',
  '*.serviceAccountPrivateKey',
  '*.*.serviceAccountPrivateKey',
  'apiKey',
  '*.apiKey',
  'webhookSecret',
  '*.webhookSecret',
  'signingKey',
  '*.signingKey',
  'bearerToken',
  '*.bearerToken',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.headers.authorization',
];

/** A request path fit for logs: the inbound key in `/v1/inbound/<provider>/<key>` is a secret. */
export function loggablePath(path: string): string {
  return path.replace(/^(\/v1\/inbound\/[^/]+\/)[^/]+/, '$1[redacted]');
}

export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'cartero', component: name },
    },
    destination,
  );
}
