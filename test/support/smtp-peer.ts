import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { PeerConfig, PeerEvent } from './smtp-peer-process';

/** Parent-side handle of a real SMTP server process (see smtp-peer-process.ts). */
export class SmtpPeer {
  readonly events: PeerEvent[] = [];
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(config: PeerConfig): Promise<SmtpPeer> {
    const child = fork(path.join(__dirname, 'smtp-peer-process.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const events: PeerEvent[] = [];
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('SMTP peer did not start within 10 s')), 10_000);
      child.on('message', (m) => {
        const e = m as PeerEvent;
        if (e.type === 'listening') {
          clearTimeout(timer);
          resolve(e.port);
        } else {
          events.push(e);
        }
      });
      child.once('exit', (code) => reject(new Error(`SMTP peer exited with ${code}`)));
      child.send(config);
    });
    const peer = new SmtpPeer(child, port);
    child.removeAllListeners('message');
    child.on('message', (m) => peer.events.push(m as PeerEvent));
    return peer;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}
