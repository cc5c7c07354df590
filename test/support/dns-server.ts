import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { DnsServerEvent, Zone } from './dns-server-process';

/** Parent-side handle of the test DNS server process (dns-server-process.ts). */
export class DnsServer {
  readonly queries: Array<{ name: string; qtype: number }> = [];
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  /** `host:port` for DNS_SERVERS. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(zone: Zone): Promise<DnsServer> {
    const child = fork(path.join(__dirname, 'dns-server-process.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const queries: Array<{ name: string; qtype: number }> = [];
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('DNS server did not start within 10 s')), 10_000);
      child.on('message', (m) => {
        const e = m as DnsServerEvent;
        if (e.type === 'listening') {
          clearTimeout(timer);
          resolve(e.port);
        } else queries.push({ name: e.name, qtype: e.qtype });
      });
      child.once('exit', (code) => reject(new Error(`DNS server exited with ${code}`)));
      child.send({ type: 'zone', zone });
    });
    const server = new DnsServer(child, port);
    child.removeAllListeners('message');
    server.queries.push(...queries);
    child.on('message', (m) => {
      const e = m as DnsServerEvent;
      if (e.type === 'query') server.queries.push({ name: e.name, qtype: e.qtype });
    });
    return server;
  }

  /** Replaces the zone. */
  setZone(zone: Zone): void {
    this.child.send({ type: 'zone', zone });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}
