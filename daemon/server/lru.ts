// A bounded least-recently-used map (a Map keeps insertion order; a hit re-inserts the key).
export class Lru<V> {
  private readonly map = new Map<string, V>();
  private total = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxSize = Infinity,
    private readonly sizeOf: (v: V) => number = () => 1,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.total -= this.sizeOf(old);
      this.map.delete(key);
    }
    const size = this.sizeOf(value);
    if (size > this.maxSize || this.maxEntries <= 0) return;
    this.map.set(key, value);
    this.total += size;
    while (this.map.size > this.maxEntries || this.total > this.maxSize) {
      const [k, v] = this.map.entries().next().value as [string, V];
      this.map.delete(k);
      this.total -= this.sizeOf(v);
    }
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}
