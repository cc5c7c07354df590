import { AuthenticationError, zodToValidationError } from '../errors';
import { fieldError, header, parseJsonBody, type InboundRequest } from './request';
import { snsMessageSchema, type SnsVerifier } from './sns';

/**
 * An SNS POST for a tenant, checked in order: the signed TopicArn is one of the tenant's topics and
 * the one the `x-amz-sns-topic-arn` header announced, the signature verifies; then a subscription
 * confirmation is confirmed, and a notification's `Message` is returned parsed as JSON.
 */
export async function openSnsPost(
  req: InboundRequest,
  ctx: { settings: { topicArns?: string[] }; sns: SnsVerifier; now: Date },
  confirm: (subscribeUrl: string) => Promise<void>,
  purpose: string,
): Promise<{ kind: 'ack'; detail: string } | { kind: 'notification'; message: unknown; snsMessageId: string }> {
  const parsed = snsMessageSchema.safeParse(parseJsonBody(req));
  if (!parsed.success) throw zodToValidationError(parsed.error);
  const m = parsed.data;
  const allowed = ctx.settings.topicArns ?? [];
  if (allowed.length === 0) throw new AuthenticationError(`no SNS topic ARN configured for this tenant (PUT /v1/tenants/{id}/inbound/ses)`);
  if (!allowed.includes(m.TopicArn)) throw new AuthenticationError(`topic ${m.TopicArn} is not one of this tenant's SNS topics`);
  const announced = header(req, 'x-amz-sns-topic-arn');
  if (announced !== null && announced !== m.TopicArn)
    throw new AuthenticationError('the signed TopicArn is not the topic the x-amz-sns-topic-arn header named');
  await ctx.sns.verify(m, ctx.now);
  if (m.Type === 'SubscriptionConfirmation') {
    if (!m.SubscribeURL) throw fieldError('SubscribeURL', 'missing in a SubscriptionConfirmation');
    await confirm(m.SubscribeURL);
    return { kind: 'ack', detail: `subscription to ${m.TopicArn} confirmed` };
  }
  if (m.Type === 'UnsubscribeConfirmation') return { kind: 'ack', detail: `unsubscribed from ${m.TopicArn}` };
  try {
    return { kind: 'notification', message: JSON.parse(m.Message), snsMessageId: m.MessageId };
  } catch {
    throw fieldError('Message', `is not the JSON of ${purpose}`);
  }
}
