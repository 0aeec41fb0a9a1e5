/**
 * Next.js 16's `cacheHandler` (next.config: `cacheHandler: require.resolve(...)`): the
 * incremental cache holding `fetch(..., { next: { tags } })` results and rendered App Router
 * pages. It keeps entries in this process's memory, like Next's own memory cache, and treats an
 * entry as missing once any of its tags or soft tags was revalidated after it was stored, by
 * any instance (the tag times come from the tag table; see `sync.ts`).
 *
 * The interface is Next 16.4's `CacheHandler` class
 * (next/dist/server/lib/incremental-cache/index.d.ts): `get(key, ctx)` returns
 * `{ lastModified, value, cacheControl }` or null, `set(key, data, ctx)`, `revalidateTag(tags,
 * durations)`, `resetRequestCache()`. The staleness rule follows Next's own FileSystemCache
 * (file-system-cache.js): a fetch entry is checked against `ctx.tags` and `ctx.softTags`, a
 * page against the tags in its `x-next-cache-tags` header. Next constructs the class per
 * request, so all state is the process's (`processSync`, and the module's store).
 */
import { Lru, maxEntries } from "./lru.js";
import { processSync, type TagSync } from "./sync.js";

/** What Next passes to `get` and `set` (the fields used here). */
export interface CacheContext {
  kind?: string;
  tags?: string[];
  softTags?: string[];
  cacheControl?: unknown;
  fetchCache?: boolean;
}

/** What Next stores: a fetch result (`kind: 'FETCH'`, with `tags`) or a rendered route. */
export interface CacheValue {
  kind: string;
  tags?: string[];
  headers?: Record<string, string | string[] | undefined>;
  [field: string]: unknown;
}

interface Stored {
  value: CacheValue;
  lastModified: number;
  cacheControl?: unknown;
  tags: string[];
}

const TAGS_HEADER = "x-next-cache-tags";
const store = new Lru<Stored>(maxEntries());

/** The tags an entry is stored under: a fetch's own, or a page's header. */
export function entryTags(value: CacheValue, ctx: CacheContext): string[] {
  const header = value.headers?.[TAGS_HEADER];
  const fromHeader = typeof header === "string" && header ? header.split(",") : [];
  return [...new Set([...(value.tags ?? []), ...(ctx.tags ?? []), ...fromHeader])];
}

export default class CatalogCacheHandler {
  /** The sync this handler asks; tests give their own. */
  static sync: () => TagSync = processSync;

  // Next passes its context (fs, serverDistDir, ...); nothing in it is needed here.
  constructor(_ctx?: unknown) {}

  async get(key: string, ctx: CacheContext = {}) {
    const sync = CatalogCacheHandler.sync();
    await sync.ready();
    const entry = store.get(key);
    if (!entry) return null;
    const tags = [...entry.tags, ...(ctx.tags ?? []), ...(ctx.softTags ?? [])];
    if (sync.times.isStale(tags, entry.lastModified)) {
      store.delete(key);
      return null;
    }
    return { lastModified: entry.lastModified, value: entry.value, cacheControl: entry.cacheControl };
  }

  async set(key: string, data: CacheValue | null, ctx: CacheContext = {}) {
    if (data === null) {
      store.delete(key);
      return;
    }
    store.set(key, {
      value: data,
      lastModified: Date.now(),
      cacheControl: ctx.fetchCache ? undefined : ctx.cacheControl,
      tags: entryTags(data, ctx),
    });
  }

  /** `revalidateTag` (server actions, route handlers): every instance learns of it. */
  async revalidateTag(tags: string | string[], _durations?: { expire?: number }) {
    const list = typeof tags === "string" ? [tags] : tags;
    if (list.length > 0) await CatalogCacheHandler.sync().revalidate(list);
  }

  resetRequestCache() {}
}
