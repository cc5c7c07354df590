import dgram from 'node:dgram';

/**
 * A tiny authoritative DNS server over UDP (RFC 1035 wire format) in its own process, for verify's
 * SPF/DKIM/DMARC checks: answers A, AAAA, MX and TXT from a zone its parent sends over IPC, NXDOMAIN
 * for names it does not hold, and nothing at all for names marked `silent` (a timeout).
 */
export interface ZoneEntry {
  txt?: string[];
  a?: string[];
  aaaa?: string[];
  mx?: string[];
  /** Never answer (the resolver times out). */
  silent?: boolean;
}
export type Zone = Record<string, ZoneEntry>;

export type DnsServerMessage = { type: 'zone'; zone: Zone; port?: number };
export type DnsServerEvent = { type: 'listening'; port: number } | { type: 'query'; name: string; qtype: number };

const TYPES: Record<number, keyof Omit<ZoneEntry, 'silent'>> = { 1: 'a', 28: 'aaaa', 15: 'mx', 16: 'txt' };

let zone: Zone = {};

function readName(buf: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  // Queries carry no compression pointers; a bounded loop over at most 128 labels.
  for (let n = 0; n < 128 && i < buf.length; n++) {
    const len = buf[i]!;
    if (len === 0) return { name: labels.join('.'), end: i + 1 };
    if (len > 63) throw new Error('compressed or bad label in a question');
    labels.push(buf.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  throw new Error('unterminated name');
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}

function rdata(type: number, value: string, index: number): Buffer {
  switch (type) {
    case 1:
      return Buffer.from(value.split('.').map(Number));
    case 28:
      return ipv6Bytes(value);
    case 15: {
      const pref = Buffer.alloc(2);
      pref.writeUInt16BE(10 * (index + 1));
      return Buffer.concat([pref, encodeName(value)]);
    }
    default: {
      // TXT: character-strings of at most 255 bytes each.
      const bytes = Buffer.from(value, 'utf8');
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length || i === 0; i += 255) {
        const c = bytes.subarray(i, i + 255);
        chunks.push(Buffer.from([c.length]), c);
      }
      return Buffer.concat(chunks);
    }
  }
}

function answer(query: Buffer): Buffer | null {
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  const { name, end } = readName(query, 12);
  const qtype = query.readUInt16BE(end);
  process.send?.({ type: 'query', name, qtype } satisfies DnsServerEvent);
  const entry = zone[name.toLowerCase()];
  if (entry?.silent) return null;
  const field = TYPES[qtype];
  const values = entry && field ? (entry[field] ?? []) : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  // QR, opcode 0, AA, RD copied; RCODE 3 (NXDOMAIN) for a name we do not hold.
  header.writeUInt16BE(0x8400 | (flags & 0x0100) | (entry ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(values.length, 6);
  const question = query.subarray(12, end + 4);
  const answers = values.map((v, i) => {
    const data = rdata(qtype, v, i);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(data.length, 10);
    return Buffer.concat([rr, data]);
  });
  return Buffer.concat([header, question, ...answers]);
}

process.on('message', (raw) => {
  const msg = raw as DnsServerMessage;
  zone = Object.fromEntries(Object.entries(msg.zone).map(([k, v]) => [k.toLowerCase(), v]));
  if (socket) return;
  socket = dgram.createSocket('udp4');
  socket.on('message', (q, rinfo) => {
    try {
      const r = answer(q);
      if (r) socket?.send(r, rinfo.port, rinfo.address);
    } catch {
      // A malformed query gets no answer.
    }
  });
  socket.bind(msg.port ?? 0, '127.0.0.1', () => {
    process.send?.({ type: 'listening', port: socket!.address().port } satisfies DnsServerEvent);
  });
});
let socket: dgram.Socket | null = null;
