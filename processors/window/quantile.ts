/**
 * The q-quantile of one histogram point, computed exactly as Prometheus'
 * histogram_quantile() does (promql/quantile.go, bucketQuantile): find the
 * bucket holding rank q·count and interpolate linearly inside it, the lowest
 * bucket starting at 0 (unless its upper bound is ≤ 0); a rank in the +Inf
 * bucket yields the highest finite bound.
 *
 * Returns undefined where Prometheus returns NaN: no observations, or no
 * finite bucket.
 */
export function histogramQuantile(q: number, boundaries: readonly number[], bucketCounts: readonly number[]): number | undefined {
  const cumulative: number[] = [];
  let total = 0;
  for (const count of bucketCounts) cumulative.push((total += count));
  if (boundaries.length === 0 || total === 0) return undefined;
  let rank = q * total;
  // The first bucket whose cumulative count reaches the rank (sort.Search over the finite buckets).
  let b = 0;
  while (b < boundaries.length && cumulative[b] < rank) b++;
  if (b === boundaries.length) return boundaries[boundaries.length - 1];
  if (b === 0 && boundaries[0] <= 0) return boundaries[0];
  let bucketStart = 0;
  let count = cumulative[b];
  if (b > 0) {
    bucketStart = boundaries[b - 1];
    count -= cumulative[b - 1];
    rank -= cumulative[b - 1];
  }
  return bucketStart + (boundaries[b] - bucketStart) * (rank / count);
}
