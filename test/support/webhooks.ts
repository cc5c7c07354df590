import assert from 'node:assert/strict';
import { api, startStack, type Stack } from './stack';
import { WebhookReceiver } from './webhook-receiver';

/** A stack whose worker may post to the receiver on this machine, with shortened webhook timings. */
export async function startWebhookStack(overrides: Record<string, string>): Promise<{ stack: Stack; receiver: WebhookReceiver }> {
  const receiver = await WebhookReceiver.start();
  const stack = await startStack({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'loopback', ...overrides });
  return { stack, receiver };
}

const secrets: Record<string, string> = {};

/**
 * Creates a tenant (admin key) whose webhook points at the receiver under `/hooks/<id>`, and tells
 * the receiver its secret so it can verify signatures. No mail is sent, so the SMTP server is nominal.
 */
export async function webhookTenant(
  stack: Stack,
  receiver: WebhookReceiver,
  id: string,
  withWebhook = true,
): Promise<{ id: string; key: string; path: string }> {
  const path = `/hooks/${id}`;
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: id,
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: 2525, security: 'starttls' },
      auth: { type: 'password', user: 'u', password: 'p' },
      ...(withWebhook ? { webhook: { url: receiver.url(path) } } : {}),
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.match(r.body.webhookSecret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'standard base64, as strict receivers decode it');
  secrets[path] = r.body.webhookSecret;
  receiver.configure({ secrets: { ...secrets } });
  return { id, key: r.body.apiKey, path };
}
