/** Names of what the kernel records as numbers: rcodes, getaddrinfo errors, and query names in wire format. */
import { REASON_EAI, REASON_TIMEOUT } from './layout.js';

/** DNS RCODEs 1-15 (the header's 4 bits; IANA "DNS RCODEs"). */
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE', 'DSOTYPENI'];

/** getaddrinfo's return values, negated (glibc's <netdb.h>). */
const EAI_ERRORS: Record<number, string> = {
  1: 'EAI_BADFLAGS',
  2: 'EAI_NONAME',
  3: 'EAI_AGAIN',
  4: 'EAI_FAIL',
  5: 'EAI_NODATA',
  6: 'EAI_FAMILY',
  7: 'EAI_SOCKTYPE',
  8: 'EAI_SERVICE',
  9: 'EAI_ADDRFAMILY',
  10: 'EAI_MEMORY',
  11: 'EAI_SYSTEM',
  12: 'EAI_OVERFLOW',
  100: 'EAI_INPROGRESS',
  101: 'EAI_CANCELED',
  102: 'EAI_NOTCANCELED',
  103: 'EAI_ALLDONE',
  104: 'EAI_INTR',
  105: 'EAI_IDN_ENCODE',
};

/** The `reason` label of a dns_failure_key.reason: "NXDOMAIN", "timeout", "EAI_AGAIN"... */
export function failureReason(reason: number): string {
  if (reason === REASON_TIMEOUT) return 'timeout';
  if (reason & REASON_EAI) {
    const code = reason & 0xffff;
    return EAI_ERRORS[code] ?? `EAI_${-code}`;
  }
  return RCODES[reason] ?? `RCODE${reason}`;
}

const BACKSLASH = 0x5c;
const DOT = 0x2e;

/**
 * A name in wire format (length-prefixed labels up to the zero-length one) in
 * presentation format, as dig prints it, without the trailing dot ("." for
 * the root): printable ASCII as it is, a dot or backslash inside a label
 * escaped with a backslash, other bytes as \DDD. So the label is always ASCII.
 */
export function presentationName(wire: Buffer, offset: number, size: number): string {
  const end = offset + size;
  const labels: string[] = [];
  let at = offset;
  while (at < end && wire[at] !== 0) {
    const labelEnd = Math.min(at + 1 + wire[at], end);
    let label = '';
    for (let i = at + 1; i < labelEnd; i++) {
      const byte = wire[i];
      if (byte === DOT || byte === BACKSLASH) label += `\\${String.fromCharCode(byte)}`;
      else if (byte > 0x20 && byte < 0x7f) label += String.fromCharCode(byte);
      else label += `\\${String(byte).padStart(3, '0')}`;
    }
    labels.push(label);
    at = labelEnd;
  }
  return labels.length ? labels.join('.') : '.';
}
