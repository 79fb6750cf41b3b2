/**
 * A fixed-capacity FIFO: the collector keeps the last hour of snapshots in one, so a server left
 * running for weeks holds the same memory as one started a minute ago.
 */
export interface RingBuffer<T> {
  readonly capacity: number;
  readonly size: number;
  push(item: T): void;
  /** Oldest first. */
  toArray(): T[];
  latest(): T | undefined;
}

export function createRingBuffer<T>(capacity: number): RingBuffer<T> {
  if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`ring buffer capacity must be a positive integer, got ${capacity}`);
  const items: (T | undefined)[] = new Array<T | undefined>(capacity);
  let next = 0;
  let size = 0;
  return {
    capacity,
    get size() {
      return size;
    },
    push(item) {
      items[next] = item;
      next = (next + 1) % capacity;
      size = Math.min(size + 1, capacity);
    },
    toArray() {
      const out: T[] = [];
      const start = (next - size + capacity) % capacity;
      for (let i = 0; i < size; i++) {
        const item = items[(start + i) % capacity];
        if (item !== undefined) out.push(item);
      }
      return out;
    },
    latest() {
      return size === 0 ? undefined : items[(next - 1 + capacity) % capacity];
    },
  };
}
