import { readFile } from 'node:fs/promises';
import { ValidationError } from './errors';
import { sisimai } from './inbound/sisimai';
import { verdictForRaw } from './inbound/verdict';

/**
 * Command-line tools. `parse-mail FILE.eml` prints the bounce verdict as one JSON object (docs/bounces.md): Cartero's
 * classifier and, when installed, Sisimai, combined. Exit 0 on success, 2 on a usage error or a file that is not a
 * message.
 */
const USAGE = 'usage: node dist/cli.js parse-mail FILE.eml';

class CliError extends Error {}

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
  let v: Awaited<ReturnType<typeof verdictForRaw>>['verdict'];
  try {
    v = (await verdictForRaw(raw)).verdict;
  } catch (err) {
    // Refused the way inbound refuses it: unreadable MIME, or none of From, To, Subject, Date, Message-ID.
    if (err instanceof ValidationError) throw new CliError(`parse-mail: ${file}: ${err.fields[0]?.message ?? err.message}`);
    throw err;
  } finally {
    await sisimai().close();
  }
  return JSON.stringify({
    kind: v.kind,
    bounces: v.bounces.map((b) => ({
      recipient: b.recipient,
      status: b.status,
      hard: b.hard,
      permanent: b.permanent,
      reason: b.reason,
      diagnostic: b.diagnostic,
    })),
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
