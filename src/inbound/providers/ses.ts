import { z } from 'zod';
import { cleanAddress } from '../../domain/inbound/email';
import { AuthenticationError, zodToValidationError } from '../../errors';
import { fromRawMime } from '../mime';
import { openSnsPost } from '../sns-post';
import { fieldError, header, type AdapterContext, type AdapterResult, type InboundRequest, type ProviderGate } from '../request';

/**
 * Amazon SES receipt rule → SNS action → HTTPS subscription. SNS posts JSON as `text/plain`; its
 * `Message` is a JSON string holding the SES notification, whose `content` is the raw message
 * (base64 with the action's BASE64 encoding, which we ask for; UTF8 accepted). Order: the
 * `x-amz-sns-topic-arn` header (SNS sends it with every POST) is one of the tenant's topics, before
 * the body is read → the signed TopicArn is that same topic → signature verified → then subscription
 * confirmed or mail parsed. SNS messages are at most 256 KB (SES hands SNS mail up to 150 KB), so
 * the body is capped far below INBOUND_BODY_LIMIT_BYTES.
 */
export const sesGate: ProviderGate = {
  enabled: (s) => (s.topicArns?.length ?? 0) > 0,
  checkHead: (head, s) => {
    const topic = header(head, 'x-amz-sns-topic-arn');
    if (!topic) throw new AuthenticationError('missing the x-amz-sns-topic-arn header SNS sends with every message');
    if (!(s.topicArns ?? []).includes(topic))
      throw new AuthenticationError(`topic ${topic.slice(0, 300)} is not one of this tenant's SNS topics`);
  },
  maxBodyBytes: 1024 * 1024,
};

const sesNotification = z.looseObject({
  notificationType: z.string(),
  mail: z
    .looseObject({ messageId: z.string().nullish(), source: z.string().nullish(), destination: z.array(z.string()).nullish() })
    .nullish(),
  receipt: z
    .looseObject({
      recipients: z.array(z.string()).nullish(),
      action: z.looseObject({ type: z.string().nullish(), encoding: z.string().nullish() }).nullish(),
    })
    .nullish(),
  content: z.string().nullish(),
});

export async function parseSes(
  req: InboundRequest,
  ctx: AdapterContext,
  confirm: (subscribeUrl: string) => Promise<void>,
): Promise<AdapterResult> {
  const opened = await openSnsPost(req, ctx, confirm, 'an SES notification');
  if (opened.kind === 'ack') return opened;
  const inner = opened.message;
  const n = sesNotification.safeParse(inner);
  if (!n.success) throw zodToValidationError(n.error, 'Message');
  // SES sends a test notification when the rule is saved; it carries no mail.
  if (n.data.notificationType !== 'Received') return { kind: 'ack', detail: `SES ${n.data.notificationType} notification acknowledged` };
  if (!n.data.content) {
    throw fieldError(
      'Message.content',
      "missing: use the receipt rule's SNS action with BASE64 encoding (the S3 action's notifications carry no message)",
    );
  }
  const encoding = (n.data.receipt?.action?.encoding ?? 'BASE64').toUpperCase();
  const raw = encoding === 'BASE64' ? Buffer.from(n.data.content, 'base64') : Buffer.from(n.data.content, 'utf8');
  const envelopeTo = (n.data.receipt?.recipients ?? n.data.mail?.destination ?? [])
    .map((a) => cleanAddress(a)?.address)
    .filter((a): a is string => !!a);
  return {
    kind: 'emails',
    emails: [
      await fromRawMime(raw, 'ses', ctx.limits, {
        providerId: n.data.mail?.messageId ?? opened.snsMessageId,
        envelopeTo,
        envelopeFrom: cleanAddress(n.data.mail?.source)?.address ?? null,
      }),
    ],
  };
}
