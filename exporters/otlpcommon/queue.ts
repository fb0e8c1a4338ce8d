/**
 * The sending queue: encoded requests waiting for delivery, bounded both in
 * items (metric points, profile samples) and in bytes. A request stays counted
 * until its delivery settles, so the bound covers the one in flight too.
 */
export interface QueuedRequest {
  /** The encoded Export*ServiceRequest. */
  body: Uint8Array;
  /** Items it carries, the unit of self-telemetry. */
  items: number;
  /** What the server counts when it rejects part of it (data points; profiles), for partial success. */
  serverUnits: number;
}

export type OfferResult = 'accepted' | 'full' | 'too_large';

export class BoundedQueue {
  private readonly entries: QueuedRequest[] = [];
  private itemCount = 0;
  private byteCount = 0;

  constructor(
    readonly maxItems: number,
    readonly maxBytes: number,
  ) {}

  get items(): number {
    return this.itemCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  get length(): number {
    return this.entries.length;
  }

  /** Adds at the tail unless that would pass a bound; a request larger than the bounds themselves can never fit. */
  offer(request: QueuedRequest): OfferResult {
    const bytes = request.body.byteLength;
    if (request.items > this.maxItems || bytes > this.maxBytes) return 'too_large';
    if (this.itemCount + request.items > this.maxItems || this.byteCount + bytes > this.maxBytes) return 'full';
    this.entries.push(request);
    this.itemCount += request.items;
    this.byteCount += bytes;
    return 'accepted';
  }

  peek(): QueuedRequest | undefined {
    return this.entries[0];
  }

  /** Removes the head once its delivery has settled. */
  remove(): void {
    const head = this.entries.shift();
    if (!head) return;
    this.itemCount -= head.items;
    this.byteCount -= head.body.byteLength;
  }

  /** Empties the queue, returning what it held. */
  drain(): QueuedRequest[] {
    const all = this.entries.splice(0);
    this.itemCount = 0;
    this.byteCount = 0;
    return all;
  }
}
