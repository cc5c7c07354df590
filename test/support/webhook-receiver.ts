import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ReceivedRequest, ReceiverConfig, ReceiverEvent } from './webhook-receiver-process';

/** Parent-side handle of the webhook receiver process (see webhook-receiver-process.ts). */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (m) => {
      const e = m as ReceiverEvent;
      if (e.type === 'request') this.requests.push(e.request);
    });
  }

  static async start(): Promise<WebhookReceiver> {
    const child = fork(path.join(__dirname, 'webhook-receiver-process.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('webhook receiver did not start within 10 s')), 10_000);
      child.once('message', (m) => {
        clearTimeout(timer);
        resolve((m as Extract<ReceiverEvent, { type: 'listening' }>).port);
      });
      child.once('exit', (code) => reject(new Error(`webhook receiver exited with ${code}`)));
    });
    return new WebhookReceiver(child, port);
  }

  url(p: string): string {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  configure(config: Partial<ReceiverConfig>): void {
    this.child.send({ type: 'config', config });
  }

  /** Requests to one path (one tenant). */
  to(p: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === p);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}
