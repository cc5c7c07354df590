import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/embedded/processes';
import { ids, pem, tail, waitUntil } from './postfix';

/**
 * A private, throw-away Dovecot IMAP server (Debian's dovecot-core + dovecot-imapd, installed by
 * scripts/ensure-postfix.sh): its own config and run directories under a temp dir, listening only
 * on 127.0.0.1 — one port with STARTTLS required, one with implicit TLS — users from a passwd-file,
 * mail in Maildirs under the temp dir. Tests drop messages straight into a Maildir (as a local
 * delivery agent would) and read what the watch did there (flags, the processed folder).
 * stop()/start() restart the same server on the same ports. Needs root (Dovecot drops privileges).
 */
export interface DovecotImap {
  /** STARTTLS port (`security: 'starttls'`). */
  port: number;
  /** Implicit TLS port (`security: 'tls'`). */
  tlsPort: number;
  user: string;
  password: string;
  /**
   * XOAUTH2 / OAUTHBEARER: Dovecot's oauth2 passdb asks a token-info endpoint served here (plain
   * HTTP on loopback) about every bearer token; only tokens given to acceptToken() are valid, for `user`.
   */
  acceptToken(token: string): void;
  /** From now on every bearer token is valid for `user` except these (a token revoked before its expiry). */
  acceptTokensExcept(refused: string[]): void;
  /** The bearer tokens Dovecot asked about, in order. */
  tokenChecks: string[];
  /** Writes a message into the user's Maildir `folder` (INBOX by default) as new, unseen mail. */
  deliver(raw: string, folder?: string): string;
  /** File names in a folder's Maildir (new/ and cur/); cur/ names carry the flags (`:2,S` = \Seen). */
  list(folder?: string): { name: string; sub: 'new' | 'cur'; seen: boolean }[];
  log(): string;
  start(): Promise<void>;
  /** SIGKILL, as when the server or its host dies. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const DOVECOT = '/usr/sbin/dovecot';
const IMAP_BINARY = '/usr/lib/dovecot/imap';

export async function startDovecotImap(opts: { serverKey: string; serverCert: string }): Promise<DovecotImap> {
  for (const bin of [DOVECOT, IMAP_BINARY]) {
    if (!existsSync(bin)) throw new Error(`${bin} is not installed: run \`bash scripts/ensure-postfix.sh\` (as root) first`);
  }
  if (process.getuid?.() !== 0) throw new Error('startDovecotImap needs root: Dovecot starts as root and drops privileges');
  const owner = ids('postfix'); // an unprivileged uid that exists wherever the Postfix suite runs
  const dovecotIds = ids('dovecot');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-imap-'));
  chmodSync(tmp, 0o755);
  const mail = path.join(tmp, 'mail');
  const user = 'bounces@acme.example';
  const password = randomBytes(18).toString('base64url');
  const home = path.join(mail, 'bounces');
  for (const d of [path.join(tmp, 'run'), path.join(tmp, 'state')]) mkdirSync(d, { recursive: true, mode: 0o755 });
  for (const d of [mail, home]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chownSync(d, owner.uid, owner.gid);
  }
  chmodSync(mail, 0o755);
  const [port, tlsPort] = [await freePort(), await freePort()];
  writeFileSync(path.join(tmp, 'server.key'), pem(opts.serverKey), { mode: 0o600 });
  writeFileSync(path.join(tmp, 'server.pem'), pem(opts.serverCert), { mode: 0o644 });
  const usersFile = path.join(tmp, 'users');
  writeFileSync(usersFile, `${user}:{PLAIN}${password}\n`, { mode: 0o640 });
  chownSync(usersFile, 0, dovecotIds.gid);
  // The token-info endpoint Dovecot's oauth2 passdb calls (GET <url><token>).
  const accepted = new Set<string>();
  let refusedOnly: Set<string> | null = null;
  const tokenChecks: string[] = [];
  const tokenInfo = http.createServer((req, res) => {
    const token = decodeURIComponent((req.url ?? '').replace(/^\/tokeninfo\?access_token=/, ''));
    tokenChecks.push(token);
    if (refusedOnly ? refusedOnly.has(token) : !accepted.has(token)) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ email: user, active: 'true' }));
  });
  await new Promise<void>((r) => tokenInfo.listen(0, '127.0.0.1', () => r()));
  const tokenInfoPort = (tokenInfo.address() as net.AddressInfo).port;
  const oauthConf = path.join(tmp, 'dovecot-oauth2.conf.ext');
  writeFileSync(
    oauthConf,
    `tokeninfo_url = http://127.0.0.1:${tokenInfoPort}/tokeninfo?access_token=\nusername_attribute = email\nactive_attribute = active\nactive_value = true\n`,
    { mode: 0o644 },
  );
  const logFile = path.join(tmp, 'dovecot.log');
  const conf = path.join(tmp, 'dovecot.conf');
  writeFileSync(
    conf,
    `# private Dovecot IMAP for tests: loopback only, TLS required, one passwd-file user
protocols = imap
instance_name = cartero-imap-${path.basename(tmp)}
base_dir = ${path.join(tmp, 'run')}
state_dir = ${path.join(tmp, 'state')}
log_path = ${logFile}
listen = 127.0.0.1
ssl = required
ssl_cert = <${path.join(tmp, 'server.pem')}
ssl_key = <${path.join(tmp, 'server.key')}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login xoauth2 oauthbearer
first_valid_uid = ${owner.uid}
mail_location = maildir:${home}/Maildir
mailbox_idle_check_interval = 1 secs
namespace inbox {
  inbox = yes
  separator = /
  # SPECIAL-USE under names that do not say so: clients must find Sent by its flag.
  mailbox "Outbox Copies" {
    special_use = \\Sent
    auto = create
  }
  mailbox "Sent" {
    auto = create
  }
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u ${usersFile}
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${oauthConf}
}
userdb {
  driver = static
  args = uid=${owner.uid} gid=${owner.gid} home=${home}
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${tlsPort}
    ssl = yes
  }
}
service anvil {
  chroot =
}
`,
  );

  let child: ChildProcess | null = null;
  let stderr = '';
  const running = () => child !== null && child.exitCode === null && child.signalCode === null;
  const greets = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('* OK'));
      });
      s.once('error', () => resolve(false));
    });

  const start = async (): Promise<void> => {
    child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!(await greets())) {
      if (!running() || Date.now() > deadline) {
        throw new Error(
          `private dovecot IMAP did not start on 127.0.0.1:${port}\n--- log ---\n${tail(logFile)}\n--- stderr ---\n${stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || !running()) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await exited;
    // Its children (imap, imap-login, auth, log) outlive the master briefly; a killed master leaves
    // them to exit when their sockets close.
    if (!(await waitUntil(() => leftovers(tmp).length === 0, 10_000))) for (const pid of leftovers(tmp)) process.kill(pid, 'SIGKILL');
  };
  const onExit = () => {
    tokenInfo.close();
    if (child?.pid && running()) child.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const maildir = (folder: string) =>
    folder.toUpperCase() === 'INBOX' ? path.join(home, 'Maildir') : path.join(home, 'Maildir', `.${folder.replace(/\//g, '.')}`);
  let n = 0;
  await start();
  return {
    port,
    tlsPort,
    user,
    password,
    acceptToken: (token) => void accepted.add(token),
    acceptTokensExcept: (refused) => void (refusedOnly = new Set(refused)),
    tokenChecks,
    deliver(raw, folder = 'INBOX') {
      const dir = maildir(folder);
      for (const sub of ['tmp', 'new', 'cur']) {
        mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
        chownSync(path.join(dir, sub), owner.uid, owner.gid);
      }
      chownSync(dir, owner.uid, owner.gid);
      // Maildir delivery: write in tmp/, then rename into new/ (the rename is what IDLE sees).
      const name = `${Date.now()}.M${++n}P${process.pid}.cartero-test`;
      const tmpFile = path.join(dir, 'tmp', name);
      writeFileSync(tmpFile, raw.replace(/\r?\n/g, '\n'), { mode: 0o600 });
      chownSync(tmpFile, owner.uid, owner.gid);
      renameSync(tmpFile, path.join(dir, 'new', name));
      return name;
    },
    list(folder = 'INBOX') {
      const dir = maildir(folder);
      const out: { name: string; sub: 'new' | 'cur'; seen: boolean }[] = [];
      for (const sub of ['new', 'cur'] as const) {
        let names: string[] = [];
        try {
          names = readdirSync(path.join(dir, sub));
        } catch {
          /* folder not created yet */
        }
        for (const name of names) out.push({ name, sub, seen: /:2,[A-Z]*S/.test(name) });
      }
      return out;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    start,
    kill: () => halt('SIGKILL'),
    async stop() {
      process.removeListener('exit', onExit);
      await halt('SIGTERM');
      tokenInfo.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Live processes of this instance (Dovecot's children carry the instance name on their command line). */
function leftovers(tmp: string): number[] {
  const name = path.basename(tmp);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(name)) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}
