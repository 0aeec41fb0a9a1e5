/**
 * Next.js 16 cache handlers whose tag state every instance of a storefront shares through
 * catalog-sync's DynamoDB tag table. See README.md.
 */
export { default as CatalogCacheHandler, entryTags } from "./incremental.js";
export { createUseCacheHandler } from "./use-cache.js";
export { TagSync, processSync, type SyncOptions, type SyncStats } from "./sync.js";
export { TagTable, tagsPk, logPk, logSk, validStorefront, LOG_BUCKET_MS } from "./table.js";
export { TagTimes } from "./tag-times.js";
