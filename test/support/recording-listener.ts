import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

/**
 * An attacker's endpoint for the credential-rebinding attack tests: a TLS listener on 127.0.0.1 (with
 * a certificate the tenant's own CA setting would trust) that records every byte it receives, so a
 * test can assert that a secret never arrived. `imap` speaks just enough IMAP for a client to log in
 * (greeting, CAPABILITY without AUTH=, a refused LOGIN); `https` answers every request like a token
 * endpoint refusing the grant.
 */
export interface RecordingListener {
  port: number;
  /** Every chunk received, as text, in arrival order (IMAP: per connection; HTTPS: method, path and body). */
  received: string[];
  connections: number;
  /** True when `secret` appears in what was received, in clear or inside a base64 word (SASL PLAIN). */
  saw(secret: string): boolean;
  stop(): Promise<void>;
}

function sawIn(received: string[], secret: string): boolean {
  const all = received.join('\n');
  if (all.includes(secret) || all.includes(encodeURIComponent(secret))) return true;
  for (const word of all.split(/[\s"]+/)) {
    if (word.length < 8 || !/^[\d+/=a-z]+$/i.test(word)) continue;
    if (Buffer.from(word, 'base64').toString('utf8').includes(secret)) return true;
  }
  return false;
}

export async function startImapRecorder(opts: { key: string; cert: string }): Promise<RecordingListener> {
  const received: string[] = [];
  let connections = 0;
  const server = tls.createServer({ key: opts.key, cert: opts.cert }, (socket) => {
    connections++;
    socket.on('error', () => undefined);
    socket.write('* OK IMAP4rev1 recorder ready\r\n');
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      received.push(text);
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        const [tag, command] = line.split(' ');
        if (!tag || !command) continue;
        const verb = command.toUpperCase();
        if (verb === 'CAPABILITY') socket.write(`* CAPABILITY IMAP4rev1\r\n${tag} OK CAPABILITY done\r\n`);
        else if (verb === 'LOGIN' || verb === 'AUTHENTICATE') socket.write(`${tag} NO [AUTHENTICATIONFAILED] recorded\r\n`);
        else if (verb === 'LOGOUT') socket.end(`* BYE\r\n${tag} OK bye\r\n`);
        else socket.write(`${tag} OK ${verb} done\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    get connections() {
      return connections;
    },
    saw: (secret) => sawIn(received, secret),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function startHttpsRecorder(opts: { key: string; cert: string }): Promise<RecordingListener> {
  const received: string[] = [];
  let connections = 0;
  const server: HttpsServer = createHttpsServer({ key: opts.key, cert: opts.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(`${req.method} ${req.url}\n${JSON.stringify(req.headers)}\n${Buffer.concat(chunks).toString('utf8')}`);
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant' }));
    });
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    get connections() {
      return connections;
    },
    saw: (secret) => sawIn(received, secret),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
