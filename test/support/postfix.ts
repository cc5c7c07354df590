import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A private, throw-away Postfix (Debian's package, installed by scripts/ensure-postfix.sh) for
 * end-to-end tests: its own config, queue and data directories under a temp dir, listening only on
 * 127.0.0.1:<free port> as a submission service (STARTTLS required, SASL PLAIN/LOGIN through a
 * private Dovecot auth service, only authenticated clients may send). Mail for the configured
 * local parts of customer.example is delivered by Postfix's virtual(8) agent into Maildirs under
 * the temp dir; everything else is refused (unknown users at RCPT, other domains by
 * default_transport = error), so nothing leaves the machine. No port 25 listener.
 *
 * Needs root (Postfix's master and Dovecot start as root and drop privileges).
 */
export interface PostfixInstance {
  port: number;
  /** SASL user (ops@acme.example) and its random password. */
  user: string;
  password: string;
  /** Maildir of <localPart>@customer.example. */
  mailboxDir(localPart: string): string;
  /** Raw RFC 5322 messages delivered to <localPart>@customer.example (Maildir new/ and cur/), oldest first. */
  readMessages(localPart: string): Promise<string[]>;
  stop(): Promise<void>;
}

export const POSTFIX_DOMAIN = 'customer.example';
/**
 * Mailboxes that exist by default. virtual(8) refuses regular-expression substitution (and
 * socketmap/tcp/proxy tables) in virtual_mailbox_maps for security, so a "$1" catch-all map
 * cannot give every local part its own Maildir: the local parts are listed in a texthash table.
 * Mail to any other local part is rejected at RCPT (550 5.1.1 User unknown).
 */
export const DEFAULT_LOCAL_PARTS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'postmaster'];
const LOCAL_PART = /^[a-z0-9][a-z0-9._+-]*$/;
const POSTFIX = '/usr/sbin/postfix';
const DOVECOT = '/usr/sbin/dovecot';
const READY_TIMEOUT_MS = 30_000;

interface Ids {
  uid: number;
  gid: number;
}

export function ids(user: string): Ids {
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** A PEM string, or a path to a PEM file. */
export function pem(value: string): string {
  return value.includes('-----BEGIN ') ? value : readFileSync(value, 'utf8');
}

export function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${path.basename(file)})`;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs a command with its output in a file rather than a pipe (`postfix start` leaves a daemon
 * behind, which must not hold our pipe open), resolving with the exit code and the output.
 */
async function run(cmd: string, args: string[], logFile: string, timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  const fd = openSync(logFile, 'w');
  try {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
    const code = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs / 1000} s:\n${tail(logFile)}`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (c, sig) => {
        clearTimeout(timer);
        resolve(c ?? (sig ? 128 : 1));
      });
    });
    return { code, output: readFileSync(logFile, 'utf8').trim() };
  } finally {
    closeSync(fd);
  }
}

/** Alive and not a zombie (an orphaned exited process may linger until PID 1 reaps it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export async function waitUntil(fn: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Connects and reads the first reply line; resolves it, or rejects on any error. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (err: Error | null, line?: string) => {
      sock.removeAllListeners();
      sock.on('error', () => undefined);
      if (!err) sock.end('QUIT\r\n');
      sock.destroySoon?.();
      setTimeout(() => sock.destroy(), 1000).unref();
      if (err) reject(err);
      else resolve(line!);
    };
    sock.setTimeout(5000, () => done(new Error('no greeting within 5 s')));
    sock.on('error', (err) => done(err));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(null, buf.slice(0, nl).trimEnd());
    });
    sock.on('end', () => done(new Error(`connection closed before a greeting (got ${JSON.stringify(buf)})`)));
  });
}

function masterCf(port: number): string {
  // No `smtp inet` (port 25) line: the only listener is the loopback submission service.
  // chroot "n" everywhere: the queue directory has no copy of /etc files or libraries.
  const services = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    '  -o syslog_name=postfix/submission',
    '  -o smtpd_tls_security_level=encrypt',
    '  -o smtpd_sasl_auth_enable=yes',
    '  -o smtpd_tls_auth_only=yes',
    '  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject',
    '  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject',
    'pickup    unix  n - n 60 1 pickup',
    'cleanup   unix  n - n - 0 cleanup',
    'qmgr      unix  n - n 300 1 qmgr',
    'tlsmgr    unix  - - n 1000? 1 tlsmgr',
    'rewrite   unix  - - n - - trivial-rewrite',
    'bounce    unix  - - n - 0 bounce',
    'defer     unix  - - n - 0 bounce',
    'trace     unix  - - n - 0 bounce',
    'verify    unix  - - n - 1 verify',
    'flush     unix  n - n 1000? 0 flush',
    'proxymap  unix  - - n - - proxymap',
    'smtp      unix  - - n - - smtp',
    'relay     unix  - - n - - smtp',
    'showq     unix  n - n - - showq',
    'error     unix  - - n - - error',
    'retry     unix  - - n - - error',
    'discard   unix  - - n - - discard',
    'local     unix  - n n - - local',
    'virtual   unix  - n n - - virtual',
    'lmtp      unix  - - n - - lmtp',
    'anvil     unix  - - n - 1 anvil',
    'scache    unix  - - n - 1 scache',
    'postlog   unix-dgram n - n - 1 postlogd',
  ];
  return services.join('\n') + '\n';
}

export async function startPostfix(opts: {
  caCert?: string;
  /** PEM text or a path to a PEM file. */
  serverKey: string;
  serverCert: string;
  /** Local parts of customer.example that get a Maildir (default DEFAULT_LOCAL_PARTS). */
  localParts?: string[];
  /** main.cf lines appended last (a later setting overrides an earlier one), e.g. to provoke DSNs. */
  extraMainCf?: string[];
}): Promise<PostfixInstance> {
  const localParts = [...new Set((opts.localParts ?? DEFAULT_LOCAL_PARTS).map((l) => l.toLowerCase()))];
  for (const l of localParts) if (!LOCAL_PART.test(l)) throw new Error(`unsupported local part ${JSON.stringify(l)}`);
  for (const bin of [POSTFIX, DOVECOT]) {
    if (!existsSync(bin)) throw new Error(`${bin} is not installed: run \`bash scripts/ensure-postfix.sh\` (as root) first`);
  }
  if (process.getuid?.() !== 0) throw new Error('startPostfix needs root: Postfix and Dovecot start as root and drop privileges');

  const pf = ids('postfix');
  const dovecotIds = ids('dovecot');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-postfix-'));
  chmodSync(tmp, 0o755); // the postfix user must traverse it
  const etc = path.join(tmp, 'etc');
  const queue = path.join(tmp, 'queue');
  const data = path.join(tmp, 'data');
  const mail = path.join(tmp, 'mail');
  const dovecotDir = path.join(tmp, 'dovecot');
  const maillog = path.join(tmp, 'maillog');
  const dovecotLog = path.join(dovecotDir, 'dovecot.log');
  const cmdLog = path.join(tmp, 'postfix-command.log');
  for (const d of [etc, queue, path.join(dovecotDir, 'run'), path.join(dovecotDir, 'state')])
    mkdirSync(d, { recursive: true, mode: 0o755 });
  for (const d of [data, mail, path.join(mail, POSTFIX_DOMAIN)]) {
    mkdirSync(d, { recursive: true, mode: 0o755 });
    chownSync(d, pf.uid, pf.gid);
  }

  const user = 'ops@acme.example';
  const password = randomBytes(18).toString('base64url');
  const port = await freePort();

  // TLS material: the key root-owned 0600 (smtpd reads it before dropping privileges).
  const keyFile = path.join(etc, 'server.key');
  const certFile = path.join(etc, 'server.pem');
  writeFileSync(keyFile, pem(opts.serverKey), { mode: 0o600 });
  writeFileSync(certFile, pem(opts.serverCert), { mode: 0o644 });
  let caFile: string | null = null;
  if (opts.caCert) {
    caFile = path.join(etc, 'ca.pem');
    writeFileSync(caFile, pem(opts.caCert), { mode: 0o644 });
  }

  writeFileSync(path.join(etc, 'virtual_mailbox'), localParts.map((l) => `${l}@${POSTFIX_DOMAIN} ${POSTFIX_DOMAIN}/${l}/\n`).join(''));
  writeFileSync(
    path.join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${queue}`,
      `data_directory = ${data}`,
      'mail_owner = postfix',
      `maillog_file = ${maillog}`,
      `maillog_file_prefixes = ${tmp}`,
      'myhostname = localhost.localdomain',
      'mydomain = localdomain',
      'myorigin = $myhostname',
      'mydestination =',
      'mynetworks = 127.0.0.1/32',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'smtpd_banner = $myhostname ESMTP Postfix',
      'biff = no',
      'append_dot_mydomain = no',
      'readme_directory = no',
      // Nothing leaves this instance: no relay host, and anything not for customer.example fails.
      'relayhost =',
      'default_transport = error:outbound delivery is disabled in this test instance',
      'relay_transport = error:relaying is disabled in this test instance',
      'local_transport = error:local delivery is disabled in this test instance',
      'alias_maps =',
      'alias_database =',
      'local_recipient_maps =',
      // customer.example: virtual(8) into <tmp>/mail/customer.example/<localpart>/ (Maildir).
      `virtual_mailbox_domains = ${POSTFIX_DOMAIN}`,
      `virtual_mailbox_base = ${mail}`,
      `virtual_mailbox_maps = texthash:${path.join(etc, 'virtual_mailbox')}`,
      `virtual_uid_maps = static:${pf.uid}`,
      `virtual_gid_maps = static:${pf.gid}`,
      `virtual_minimum_uid = ${pf.uid}`,
      'virtual_transport = virtual',
      // TLS (required on the submission service, see master.cf).
      `smtpd_tls_cert_file = ${certFile}`,
      `smtpd_tls_key_file = ${keyFile}`,
      ...(caFile ? [`smtpd_tls_CAfile = ${caFile}`] : []),
      'smtpd_tls_security_level = may',
      'smtpd_tls_loglevel = 1',
      'smtpd_tls_received_header = yes',
      'smtp_tls_security_level = none',
      // SASL through the private Dovecot (socket inside this queue directory).
      'smtpd_sasl_type = dovecot',
      'smtpd_sasl_path = private/auth',
      'smtpd_sasl_auth_enable = no',
      'smtpd_sasl_security_options = noanonymous',
      'smtpd_sasl_authenticated_header = yes',
      ...(opts.extraMainCf ?? []),
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(etc, 'master.cf'), masterCf(port));

  const usersFile = path.join(dovecotDir, 'users');
  writeFileSync(usersFile, `${user}:{PLAIN}${password}\n`, { mode: 0o640 });
  chownSync(usersFile, 0, dovecotIds.gid);
  const dovecotConf = path.join(dovecotDir, 'dovecot.conf');
  writeFileSync(
    dovecotConf,
    `# private Dovecot: SASL for the private Postfix only, no IMAP/POP, no network listeners
protocols = none
instance_name = cartero-test-${path.basename(tmp)}
base_dir = ${path.join(dovecotDir, 'run')}
state_dir = ${path.join(dovecotDir, 'state')}
log_path = ${dovecotLog}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${usersFile}
}
userdb {
  driver = static
  args = uid=${pf.uid} gid=${pf.gid} home=/nonexistent
}
service auth {
  unix_listener ${path.join(queue, 'private', 'auth')} {
    mode = 0660
    user = postfix
    group = postfix
  }
}
`,
  );

  let dovecot: ChildProcess | null = null;
  let dovecotStderr = '';
  let stopped = false;

  const masterPid = (): number | null => {
    try {
      const pid = Number(readFileSync(path.join(queue, 'pid', 'master.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  };

  // Last resort if the test process exits without stop(): no daemons left behind.
  const onExit = () => {
    try {
      execFileSync(POSTFIX, ['-c', etc, 'abort'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      /* not running */
    }
    if (dovecot?.pid && dovecot.exitCode === null) {
      try {
        process.kill(dovecot.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    const pid = masterPid();
    if (pid !== null && alive(pid)) {
      const r = await run(POSTFIX, ['-c', etc, 'stop'], cmdLog, 30_000).catch(() => ({ code: 1, output: '' }));
      if (r.code !== 0 || !(await waitUntil(() => !alive(pid), 15_000))) {
        await run(POSTFIX, ['-c', etc, 'abort'], cmdLog, 15_000).catch(() => undefined);
        if (!(await waitUntil(() => !alive(pid), 5_000))) {
          try {
            process.kill(-pid, 'SIGKILL'); // master is a session/process-group leader
          } catch {
            /* gone */
          }
        }
      }
    }
    const child = dovecot;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
      clearTimeout(kill);
    }
    // Dovecot's own children (log, anvil, config, auth) exit after their master; wait briefly.
    if (!(await waitUntil(() => leftovers(tmp).length === 0, 10_000))) {
      for (const pid of leftovers(tmp)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  };

  const fail = async (what: string): Promise<never> => {
    const details =
      `${what}\n--- ${maillog} (tail) ---\n${tail(maillog)}\n--- ${dovecotLog} (tail) ---\n${tail(dovecotLog, 20)}` +
      (dovecotStderr.trim() ? `\n--- dovecot stderr ---\n${dovecotStderr.trim()}` : '');
    await stop().catch(() => undefined);
    throw new Error(details);
  };

  // `postfix check` validates the configuration and creates the queue directories (private/
  // must exist before Dovecot puts its auth socket there).
  const check = await run(POSTFIX, ['-c', etc, 'check'], cmdLog);
  if (check.code !== 0) return fail(`postfix -c ${etc} check failed (exit ${check.code}):\n${check.output}`);

  dovecot = spawn(DOVECOT, ['-F', '-c', dovecotConf], { stdio: ['ignore', 'ignore', 'pipe'] });
  dovecot.stderr!.on('data', (d: Buffer) => (dovecotStderr += d.toString()));
  dovecot.once('error', (err) => (dovecotStderr += `spawn error: ${err.message}\n`));
  const authSocket = path.join(queue, 'private', 'auth');
  const dovecotGone = () => dovecot.exitCode !== null || dovecot.signalCode !== null || dovecot.pid === undefined;
  await waitUntil(() => existsSync(authSocket) || dovecotGone(), 15_000);
  if (!existsSync(authSocket)) {
    return fail(
      `dovecot did not create ${authSocket} within 15 s (${dovecotGone() ? `exited: ${dovecot.exitCode ?? dovecot.signalCode ?? 'spawn failed'}` : 'still running'})`,
    );
  }

  const started = await run(POSTFIX, ['-c', etc, 'start'], cmdLog);
  if (started.code !== 0) return fail(`postfix -c ${etc} start failed (exit ${started.code}):\n${started.output}`);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  for (;;) {
    try {
      const line = await greeting(port);
      if (line.startsWith('220')) break;
      last = `unexpected greeting ${JSON.stringify(line)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    const pid = masterPid();
    if (pid === null || !alive(pid)) return fail(`the private postfix master is not running (last connection attempt: ${last})`);
    if (Date.now() > deadline)
      return fail(`private postfix on 127.0.0.1:${port} sent no 220 greeting within ${READY_TIMEOUT_MS / 1000} s (last: ${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const mailboxDir = (localPart: string): string => {
    const l = localPart.toLowerCase();
    if (!localParts.includes(l))
      throw new Error(
        `${l}@${POSTFIX_DOMAIN} has no mailbox in this instance (configured: ${localParts.join(', ')}; pass localParts to startPostfix)`,
      );
    return path.join(mail, POSTFIX_DOMAIN, l);
  };

  return {
    port,
    user,
    password,
    mailboxDir,
    async readMessages(localPart: string): Promise<string[]> {
      const dir = mailboxDir(localPart);
      const files: Array<{ file: string; mtime: number }> = [];
      for (const sub of ['new', 'cur']) {
        let names: string[];
        try {
          names = readdirSync(path.join(dir, sub));
        } catch {
          continue;
        }
        for (const name of names) {
          const file = path.join(dir, sub, name);
          files.push({ file, mtime: statSync(file).mtimeMs });
        }
      }
      files.sort((a, b) => a.mtime - b.mtime || a.file.localeCompare(b.file));
      return files.map((f) => readFileSync(f.file, 'utf8'));
    },
    stop,
  };
}

/**
 * Whether any live process still belongs to the instance: Dovecot's children carry the instance
 * name (which contains the temp dir's name) on their command line, Postfix's daemons carry
 * MAIL_CONFIG=<config dir> in their environment.
 */
function leftovers(tmp: string): number[] {
  const name = path.basename(tmp);
  const env = `MAIL_CONFIG=${path.join(tmp, 'etc')}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8') + '\0';
      if ((cmd.includes(name) || environ.includes(env)) && alive(Number(entry))) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}
