import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Cartero's search attributes, as the Temporal Web UI shows and filters them. */
export const TenantIdKey = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const CaseIdKey = defineSearchAttributeKey('CaseId', SearchAttributeType.KEYWORD);
export const MessageIdKey = defineSearchAttributeKey('MessageId', SearchAttributeType.KEYWORD);
export const SendStatusKey = defineSearchAttributeKey('SendStatus', SearchAttributeType.KEYWORD);

/** Name → type, for `temporal server start-dev --search-attribute` and the operator API. */
export const SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; type: 'Keyword' }> = [
  { name: 'TenantId', type: 'Keyword' },
  { name: 'CaseId', type: 'Keyword' },
  { name: 'MessageId', type: 'Keyword' },
  { name: 'SendStatus', type: 'Keyword' },
];
