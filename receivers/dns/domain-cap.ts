/**
 * The bound on distinct `domain` label values: random subdomains would
 * otherwise make a series per query.
 */
export const OTHER_DOMAIN = '[other]';

/** A domain unseen for this long gives its place to a new one. */
const DOMAIN_EXPIRATION_MS = 5 * 60_000;

export class DomainCap {
  /** Domains with their own series, by when they were last seen. */
  private readonly lastSeen = new Map<string, number>();

  constructor(private readonly maxDomains: number) {}

  /** The domain itself while it has (or gets) one of the places, else OTHER_DOMAIN. */
  admit(domain: string, nowMs: number): string {
    if (this.lastSeen.has(domain) || this.lastSeen.size < this.maxDomains) {
      this.lastSeen.set(domain, nowMs);
      return domain;
    }
    return OTHER_DOMAIN;
  }

  expire(nowMs: number): void {
    for (const [domain, seen] of this.lastSeen) if (nowMs - seen > DOMAIN_EXPIRATION_MS) this.lastSeen.delete(domain);
  }
}
