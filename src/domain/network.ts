import ipaddr from 'ipaddr.js';

/** Where an address sits, for the SSRF guard on tenant SMTP hosts. */
export type AddressClass = 'public' | 'loopback' | 'private' | 'linklocal' | 'uniquelocal' | 'reserved';
export type AllowableClass = Exclude<AddressClass, 'public' | 'reserved'>;

export function isIpLiteral(host: string): boolean {
  return ipaddr.isValid(stripBrackets(host));
}

export function classifyAddress(address: string): AddressClass {
  // ipaddr.process unwraps IPv4-mapped IPv6 (::ffff:127.0.0.1), which would otherwise dodge the check.
  const ip = ipaddr.process(stripBrackets(address));
  switch (ip.range()) {
    case 'unicast':
      return 'public';
    case 'loopback':
      return 'loopback';
    case 'private':
    case 'carrierGradeNat':
      return 'private';
    case 'linkLocal':
      return 'linklocal';
    case 'uniqueLocal':
      return 'uniquelocal';
    default:
      // unspecified, broadcast, multicast, reserved, 6to4/teredo and documentation ranges: never a mail server.
      return 'reserved';
  }
}

/** Null when allowed, else the reason naming the class and the setting that would allow it. */
export function addressRefusal(
  address: string,
  allowed: readonly AllowableClass[],
  setting = 'SMTP_ALLOW_PRIVATE_NETWORKS',
): string | null {
  const cls = classifyAddress(address);
  if (cls === 'public') return null;
  if (cls !== 'reserved' && allowed.includes(cls)) return null;
  return cls === 'reserved'
    ? `${address} is a reserved/special-purpose address`
    : `${address} is a ${cls} address; allowed only when ${setting} includes "${cls}"`;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
