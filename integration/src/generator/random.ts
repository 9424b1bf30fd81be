import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** A seeded source of randomness: the same seed always gives the same sequence. */
export interface Random {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [from, to], both included. */
  int(from: number, to: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** Exponentially distributed value with the given mean. */
  exponential(mean: number): number;
}

/**
 * Creates a {@link Random} from a 32-bit seed (xoroshiro128+ from pure-rand).
 *
 * @param seed - any integer; equal seeds give equal sequences
 * @returns the seeded source
 */
export function createRandom(seed: number): Random {
  const rng = xoroshiro128plus(seed | 0);
  const next = () => uniformFloat64(rng);
  return {
    next,
    int: (from, to) => from + Math.floor(next() * (to - from + 1)),
    chance: (p) => p > 0 && next() < p,
    exponential: (mean) => -Math.log(1 - next()) * mean,
  };
}

/**
 * Samples ranks `0..n-1` with Zipf skew: rank `k` has weight `1 / (k+1)^s`, so
 * a few ranks (hot users, popular pages) get most of the traffic.
 */
export class ZipfSampler {
  private readonly cdf: Float64Array;

  /**
   * @param n - number of ranks (at least 1)
   * @param s - skew exponent; 0 is uniform, ~1 is typical web traffic
   */
  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Zipf needs n >= 1, got ${n}`);
    if (!(s >= 0)) throw new RangeError(`Zipf needs s >= 0, got ${s}`);
    this.cdf = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) {
      total += 1 / (k + 1) ** s;
      this.cdf[k] = total;
    }
    for (let k = 0; k < n; k++) this.cdf[k]! /= total;
  }

  /** Probability of rank `k`. */
  probability(k: number): number {
    return this.cdf[k]! - (k > 0 ? this.cdf[k - 1]! : 0);
  }

  /** Draws one rank using `random`. */
  sample(random: Random): number {
    const u = random.next();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
