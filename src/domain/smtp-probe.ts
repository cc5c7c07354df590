/**
 * What `POST /v1/tenants/:id/verify` answers: the SMTP probe's result, step by step (the probe
 * itself is src/activities/smtp-probe.ts). Shared by the activity, the verify workflow and the route.
 */
export type ProbeStep = 'dns' | 'tcp' | 'greeting' | 'ehlo' | 'starttls' | 'tls' | 'auth';

export interface ProbeStepResult {
  step: ProbeStep;
  ok: boolean;
  ms: number;
  detail?: string;
  /** The server's reply for this step, verbatim (multi-line replies joined with \n). */
  reply?: string;
}

export interface ProbeResult {
  ok: boolean;
  host: string;
  port: number;
  security: 'starttls' | 'tls';
  address?: string;
  steps: ProbeStepResult[];
  failedStep?: ProbeStep;
  /** Exact reply of the server at the failed step, when the server replied. */
  reply?: string;
  error?: string;
  capabilities?: string[];
  tls?: { protocol: string | null; cipher: string; subject?: string; issuer?: string; validTo?: string };
}
