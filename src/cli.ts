import { readFile } from 'node:fs/promises';
import { classifyMail } from './domain/mail/classify';
import { mailFromRaw } from './mail/from-mime';

/**
 * Command-line tools. `parse-mail FILE.eml` prints the classifier's verdict as one JSON object
 * (docs/bounces.md). Exit 0 on success, 2 on a usage error or a file that is not a message.
 */
const USAGE = 'usage: node dist/cli.js parse-mail FILE.eml';

class CliError extends Error {}

const MESSAGE_HEADERS = new Set(['from', 'to', 'subject', 'date', 'message-id', 'received', 'return-path']);

async function parseMail(file: string | undefined): Promise<string> {
  if (!file) throw new CliError(USAGE);
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (err as Error).message;
    throw new CliError(`parse-mail: cannot read ${file}: ${why}`);
  }
  if (raw.length === 0) throw new CliError(`parse-mail: ${file} is empty`);
  const mail = await mailFromRaw(raw);
  // mailparser accepts any bytes; a message has at least one of the headers every MTA writes.
  if (!mail.headers.some((h) => MESSAGE_HEADERS.has(h.name.toLowerCase()))) {
    throw new CliError(`parse-mail: ${file} is not an RFC 5322 message (no From, To, Subject, Date, Message-ID or Received header)`);
  }
  const v = classifyMail(mail);
  return JSON.stringify({
    kind: v.kind,
    bounces: v.bounces.map((b) => ({ recipient: b.recipient, status: b.status, hard: b.hard, reason: b.reason, diagnostic: b.diagnostic })),
    originalMessageId: v.originalMessageId,
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command !== 'parse-mail') throw new CliError(USAGE);
    if (args.length > 1) throw new CliError(USAGE);
    process.stdout.write(`${await parseMail(args[0])}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${err instanceof CliError ? err.message : `parse-mail: ${(err as Error).message}`}\n`);
    return 2;
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
