import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { OAuthServerCommand, OAuthServerConfig, OAuthServerEvent } from './oauth-server-process';

/** Parent-side handle of the real OAuth2 server process (see oauth-server-process.ts). */
export class OAuthServer {
  readonly events: OAuthServerEvent[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly issuer: string,
  ) {}

  get baseUrl(): string {
    return `https://localhost:${this.port}`;
  }

  static async start(config: OAuthServerConfig): Promise<OAuthServer> {
    const child = fork(path.join(__dirname, 'oauth-server-process.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const started = await new Promise<{ port: number; issuer: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('OAuth2 server did not start within 15 s')), 15_000);
      child.on('message', (m) => {
        const e = m as OAuthServerEvent;
        if (e.type === 'listening') {
          clearTimeout(timer);
          resolve({ port: e.port, issuer: e.issuer });
        }
      });
      child.once('exit', (code) => reject(new Error(`OAuth2 server exited with ${code}`)));
      child.send(config);
    });
    const server = new OAuthServer(child, started.port, started.issuer);
    child.removeAllListeners('message');
    child.on('message', (m) => server.events.push(m as OAuthServerEvent));
    return server;
  }

  command(c: OAuthServerCommand): void {
    this.child.send(c);
  }

  /** Token requests answered, optionally of one grant type and status. */
  tokens(grantType?: string, status?: number): Array<Extract<OAuthServerEvent, { type: 'token' }>> {
    return this.events.filter(
      (e): e is Extract<OAuthServerEvent, { type: 'token' }> =>
        e.type === 'token' && (grantType === undefined || e.grantType === grantType) && (status === undefined || e.status === status),
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}
