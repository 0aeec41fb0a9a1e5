/** A Map that forgets its least recently used entries past `max` (the handlers own eviction). */
export class Lru<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      this.map.delete(this.map.keys().next().value as string);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

/** `CATALOG_CACHE_MAX_ENTRIES`, default 10 000. */
export function maxEntries(): number {
  const n = Number(process.env.CATALOG_CACHE_MAX_ENTRIES ?? 10_000);
  return Number.isInteger(n) && n > 0 ? n : 10_000;
}
