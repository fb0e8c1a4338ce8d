/**
 * Exponential backoff with jitter, as the Collector's exporterhelper does it
 * (cenkalti/backoff): each wait is the current interval randomized by
 * ±randomization_factor, and the interval grows by `multiplier` up to
 * `max_interval`. Jitter keeps many exporters from retrying in lockstep.
 */
import type { RetryConfig } from './config.js';

export class ExponentialBackoff {
  private interval: number;

  constructor(private readonly config: RetryConfig) {
    this.interval = config.initial_interval;
  }

  /** The next wait in milliseconds. */
  next(): number {
    const spread = this.config.randomization_factor * this.interval;
    const wait = this.interval - spread + Math.random() * 2 * spread;
    this.interval = Math.min(this.interval * this.config.multiplier, this.config.max_interval);
    return wait;
  }
}
