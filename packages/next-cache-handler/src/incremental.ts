/**
 * Next.js 16's `cacheHandler` (next.config: `cacheHandler: require.resolve(...)`): the
 * incremental cache holding `fetch(..., { next: { tags } })` results and rendered App Router
 * pages. It keeps entries in this process's memory, like Next's own memory cache, and treats an
 * entry as missing once any of its tags or soft tags was revalidated after it was stored, by
 * any instance (the tag times come from the tag table; see `sync.ts`).
 *
 * Next does not say when the render behind a `set` began, and staleness is decided by that
 * (`tag-times.ts`): a render begins after the `get` that missed or found the entry due, so
 * each `get` notes its time and each `set` takes the oldest noted one of its key.
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
  /** When the render behind it began, at the latest (the sync's clock). */
  startedAt: number;
  cacheControl?: unknown;
  tags: string[];
}

const TAGS_HEADER = "x-next-cache-tags";
const store = new Lru<Stored>(maxEntries());
/**
 * Per key, the times of `get`s that lead to a render (a miss, or an entry due), not yet
 * followed by a `set`: oldest first, at most 8 (a render Next dropped leaves its time here,
 * which only makes a later entry count as older than it is).
 */
const gets = new Lru<number[]>(maxEntries());

/** Notes a `get` of `key` at `at`. */
function noteGet(key: string, at: number): void {
  const times = gets.get(key) ?? [];
  if (times.length < 8) times.push(at);
  gets.set(key, times);
}

/** The oldest noted `get` of `key`, taken; `now` when none is noted. */
function takeGet(key: string, now: number): number {
  const times = gets.get(key);
  const oldest = times?.shift();
  if (times && times.length === 0) gets.delete(key);
  return oldest ?? now;
}

/** Whether Next will render `entry` again after serving it (its revalidate period is over). */
function due(entry: Stored): boolean {
  const control = entry.cacheControl as { revalidate?: unknown } | undefined;
  const seconds = control?.revalidate ?? entry.value.revalidate;
  return typeof seconds === "number" && Date.now() - entry.lastModified > seconds * 1000;
}

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
    const askedAt = sync.now();
    await sync.ready();
    const entry = store.get(key);
    const tags = entry ? [...entry.tags, ...(ctx.tags ?? []), ...(ctx.softTags ?? [])] : [];
    if (!entry || sync.times.isStale(tags, entry.startedAt)) {
      store.delete(key);
      noteGet(key, askedAt);
      return null;
    }
    // An entry past its revalidate period is served and rendered again in the background.
    if (due(entry)) noteGet(key, askedAt);
    return { lastModified: entry.lastModified, value: entry.value, cacheControl: entry.cacheControl };
  }

  async set(key: string, data: CacheValue | null, ctx: CacheContext = {}) {
    if (data === null) {
      store.delete(key);
      gets.delete(key);
      return;
    }
    store.set(key, {
      value: data,
      lastModified: Date.now(),
      startedAt: takeGet(key, CatalogCacheHandler.sync().now()),
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
