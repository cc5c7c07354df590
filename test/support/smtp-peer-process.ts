import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/**
 * A real SMTP server (smtp-server from npm) in its own process, driven by its parent over IPC.
 * Tests control what it accepts and can kill it outright; every received message is reported back.
 */
export interface PeerConfig {
  /** Implicit TLS from the first byte (port 465 style) instead of STARTTLS. */
  implicitTls: boolean;
  key: string;
  cert: string;
  users: Record<string, string>;
  authMethods?: string[];
  /** Advertise no STARTTLS (to test the refusal to authenticate in clear). */
  hideStartTls?: boolean;
}

export type PeerEvent =
  | { type: 'listening'; port: number }
  | { type: 'message'; from: string; to: string[]; size: number; at: number }
  | { type: 'auth'; user: string; ok: boolean };

const send = (e: PeerEvent) => process.send?.(e);

process.once('message', (raw) => {
  const cfg = raw as PeerConfig;
  const options: SMTPServerOptions = {
    secure: cfg.implicitTls,
    key: cfg.key,
    cert: cfg.cert,
    hideSTARTTLS: cfg.hideStartTls ?? false,
    authMethods: cfg.authMethods ?? ['PLAIN', 'LOGIN'],
    // AUTH only after TLS, like every real submission server.
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, _session, callback) {
      const ok = auth.username !== undefined && cfg.users[auth.username] === auth.password;
      send({ type: 'auth', user: auth.username ?? '', ok });
      if (!ok) {
        const err = new Error('5.7.8 Error: authentication failed: bad credentials') as Error & { responseCode: number };
        err.responseCode = 535;
        return callback(err);
      }
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      let size = 0;
      stream.on('data', (c: Buffer) => (size += c.length));
      stream.on('end', () => {
        send({
          type: 'message',
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          size,
          at: Date.now(),
        });
        callback();
      });
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => undefined);
  server.listen(0, '127.0.0.1', () => {
    const addr = server.server.address();
    send({ type: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
  });
});
