/**
 * A `cacheHandlers` entry for `'use cache'` (next.config: `cacheHandlers: { default: ... }`),
 * implementing Next 16.4's `CacheHandler` interface
 * (next/dist/server/lib/cache-handlers/types.d.ts) on the model of its default in-memory
 * handler (cache-handlers/default.js): entries buffered in this process's memory, a fresh
 * stream from every `get`, an entry whose tags were revalidated is missing, `expire: 0`
 * entries are not kept. What differs is where tag times come from: the tag table, shared by
 * every instance (`sync.ts`), instead of the process-local tags manifest. `refreshTags` is
 * called once per request and makes no call: the sync polls in the background.
 */
import { Lru, maxEntries } from "./lru.js";
import { processSync, type TagSync } from "./sync.js";

/** Next's `CacheEntry` (types.d.ts). */
export interface CacheEntry {
  value: ReadableStream<Uint8Array>;
  tags: string[];
  stale: number;
  timestamp: number;
  expire: number;
  revalidate: number;
}

type Meta = Omit<CacheEntry, "value">;

async function buffer(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** A `'use cache'` handler reading tag times from `sync()`. */
export function createUseCacheHandler(sync: () => TagSync = processSync) {
  const entries = new Lru<{ meta: Meta; bytes: Uint8Array }>(maxEntries());
  const pending = new Map<string, Promise<void>>();
  return {
    async get(key: string, softTags: string[]): Promise<CacheEntry | undefined> {
      await pending.get(key);
      await sync().ready();
      const stored = entries.get(key);
      if (!stored) return undefined;
      const { meta } = stored;
      if (Date.now() > meta.timestamp + meta.revalidate * 1000) return undefined;
      if (sync().times.isStale([...meta.tags, ...softTags], meta.timestamp)) {
        entries.delete(key);
        return undefined;
      }
      return { ...meta, value: streamOf(stored.bytes) };
    },

    async set(key: string, pendingEntry: Promise<CacheEntry>): Promise<void> {
      let done = () => {};
      pending.set(key, new Promise<void>((resolve) => (done = resolve)));
      try {
        const entry = await pendingEntry;
        if (entry.expire === 0) return;
        const bytes = await buffer(entry.value);
        const { value: _, ...meta } = entry;
        entries.set(key, { meta, bytes });
      } catch {
        // A failed render stores nothing; the next request renders again.
      } finally {
        done();
        pending.delete(key);
      }
    },

    async refreshTags(): Promise<void> {
      void sync().start();
    },

    async getExpiration(tags: string[]): Promise<number> {
      await sync().ready();
      return sync().times.expiration(tags);
    },

    async updateTags(tags: string[], _durations?: { expire?: number }): Promise<void> {
      if (tags.length > 0) await sync().revalidate(tags);
    },
  };
}

export default createUseCacheHandler();
