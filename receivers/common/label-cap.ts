/** A bound on the distinct values of a label, for the receiver's lifetime (tcp's dst_ip, tls's server_name). */

/** The label value of everything past the cap. */
export const OTHER_VALUE = '[other]';

export class FirstValuesCap {
  private readonly admitted = new Set<string>();

  constructor(private readonly max: number) {}

  /** The value itself if it is one of the first `max` distinct values seen, else undefined (the caller folds it into OTHER_VALUE). */
  admit(value: string): string | undefined {
    if (this.admitted.has(value)) return value;
    if (this.admitted.size >= this.max) return undefined;
    this.admitted.add(value);
    return value;
  }
}
