import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * What `npm start` has running, on disk (`.data/run/npm-start.json`): its own pid and every process
 * it started. The servers run in their own process groups (so Ctrl-C reaches only the launcher, which
 * stops them in order), so a launcher that dies without stopping them — SIGKILL, a closed terminal,
 * an out-of-memory kill — leaves Temporal, FerretDB, the worker and the API holding their ports. The
 * next launcher reads this record and stops what is left.
 */
export interface RunRecord {
  launcher: number;
  startedAt: string;
  processes: Array<{ name: string; pid: number; command: string }>;
}

export function readRunRecord(file: string): RunRecord | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  } catch {
    return null; // a record cut short by the crash that left it: nothing usable in it
  }
}

export function writeRunRecord(file: string, record: RunRecord): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(record, null, 2));
  renameSync(`${file}.tmp`, file);
}

export function removeRunRecord(file: string): void {
  rmSync(file, { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Still the process recorded, not a later one that got the same pid (Linux: its command line). */
export function isSameProcess(pid: number, command: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(command);
  } catch {
    return true; // no /proc (not Linux): the pid is alive and recorded by us, which is as sure as it gets
  }
}

/** Stops the recorded processes that are still running (SIGTERM to their group, SIGKILL after `graceMs`). */
export async function stopLeftovers(record: RunRecord, graceMs = 15_000): Promise<string[]> {
  const left = record.processes.filter((p) => isSameProcess(p.pid, p.command));
  // API and worker first (they drain), then the servers, as a clean stop would.
  for (const group of [
    left.filter((p) => p.name === 'api' || p.name === 'worker'),
    left.filter((p) => p.name !== 'api' && p.name !== 'worker'),
  ]) {
    for (const p of group) signal(p.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (group.some((p) => isAlive(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    for (const p of group) if (isAlive(p.pid)) signal(p.pid, 'SIGKILL');
    const killed = Date.now() + 5_000;
    while (group.some((p) => isAlive(p.pid)) && Date.now() < killed) await new Promise((r) => setTimeout(r, 100));
  }
  return left.map((p) => `${p.name} (pid ${p.pid})`);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    // Each was started as the leader of its own process group: the group takes its children along.
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // Gone meanwhile: nothing left to stop.
    }
  }
}
