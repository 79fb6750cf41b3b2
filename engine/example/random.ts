/**
 * A small seeded generator (mulberry32) for the workload's parameters. Each operation gets its own
 * stream, keyed by (seed, ticket), so what operation n asks for does not depend on how the concurrent
 * workers happened to interleave.
 */
export function createRandom(seed: number, stream: number): () => number {
  let state = mix(seed, stream);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** murmur3's finaliser over the pair, so that neighbouring streams start far apart. */
function mix(seed: number, stream: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul((stream + 0x7f4a7c15) | 0, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
