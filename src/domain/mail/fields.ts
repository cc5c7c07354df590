/**
 * RFC 5322-style "Name: value" field blocks, as found in message/delivery-status,
 * message/feedback-report, text/rfc822-headers and the header section of returned messages.
 */
export interface Field {
  name: string;
  value: string;
}

/** Splits a text into field groups separated by blank lines (RFC 3464 §2.1), unfolding continuations. */
export function fieldGroups(text: string): Field[][] {
  const groups: Field[][] = [];
  let current: Field[] = [];
  for (const line of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (line.trim() === '') {
      if (current.length) groups.push(current);
      current = [];
      continue;
    }
    const last = current[current.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value = `${last.value} ${line.trim()}`;
      continue;
    }
    // Field names are printable ASCII but ':' (RFC 5322 ftext); the value is trimmed below.
    const m = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) current.push({ name: m[1].toLowerCase(), value: m[2].trim() });
  }
  if (current.length) groups.push(current);
  return groups;
}

/** The header section of a raw message (everything before the first blank line), as fields. */
export function headerFields(raw: string): Field[] {
  const text = raw.replace(/\r\n?/g, '\n');
  const end = text.indexOf('\n\n');
  return fieldGroups(end < 0 ? text : text.slice(0, end))[0] ?? [];
}

export function fieldValue(fields: ReadonlyArray<{ name: string; value: string }>, name: string): string | null {
  const wanted = name.toLowerCase();
  return fields.find((f) => f.name.toLowerCase() === wanted)?.value ?? null;
}

// Starts only where a run of local-part characters starts: trying every position inside a long run
// without an '@' would make the search quadratic.
const ADDRESS =
  /(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+@[A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?(?:\.[A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?)+/i;

/** The first e-mail address in a text (`rfc822; a@b`, `<a@b>`, `"Name" <a@b>`), lowercased. */
export function addressIn(text: string | null): string | null {
  if (!text) return null;
  const bracketed = /<([^\s<>][^\s<>@]*@[^\s<>]+)>/.exec(text);
  const found = bracketed?.[1] ?? ADDRESS.exec(text)?.[0];
  return found ? found.replace(/^rfc822;/i, '').toLowerCase() : null;
}

/** A Message-ID with its angle brackets, or null. */
export function messageIdIn(text: string | null): string | null {
  if (!text) return null;
  const m = /<[^\s<>][^\s<>@]*@[^\s<>]+>/.exec(text);
  return m ? m[0] : null;
}
