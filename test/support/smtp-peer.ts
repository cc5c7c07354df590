import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { PeerAck, PeerCommand, PeerConfig, PeerEvent } from './smtp-peer-process';

/** Parent-side handle of a real SMTP server process (see smtp-peer-process.ts). */
export class SmtpPeer {
  readonly events: PeerEvent[] = [];
  private configSeq = 0;
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(config: PeerConfig): Promise<SmtpPeer> {
    const child = fork(path.join(__dirname, 'smtp-peer-process.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const early: PeerEvent[] = [];
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('SMTP peer did not start within 10 s')), 10_000);
      child.on('message', (m) => {
        const e = m as PeerEvent;
        if (e.type === 'listening') {
          clearTimeout(timer);
          resolve(e.port);
        } else early.push(e);
      });
      child.once('exit', (code) => reject(new Error(`SMTP peer exited with ${code}`)));
      child.send(config);
    });
    const peer = new SmtpPeer(child, port);
    peer.events.push(...early);
    child.removeAllListeners('message');
    child.on('message', (m) => {
      if ((m as PeerEvent | PeerAck).type !== 'configured') peer.events.push(m as PeerEvent);
    });
    return peer;
  }

  /** Changes what the running server answers (users, scripted replies). */
  async configure(config: Partial<PeerConfig>): Promise<void> {
    // Resolved when the server process has applied it: the next session a test starts sees it.
    const seq = ++this.configSeq;
    const applied = new Promise<void>((resolve) => {
      const onAck = (m: unknown) => {
        const ack = m as PeerAck;
        if (ack.type !== 'configured' || ack.seq !== seq) return;
        this.child.off('message', onAck);
        resolve();
      };
      this.child.on('message', onAck);
    });
    this.child.send({ type: 'config', config, seq } satisfies PeerCommand);
    await applied;
  }

  messages(): Array<Extract<PeerEvent, { type: 'message' }>> {
    return this.events.filter((e): e is Extract<PeerEvent, { type: 'message' }> => e.type === 'message');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
