/**
 * Next.js 16 cache handlers whose tag state every instance of a storefront shares through
 * catalog-sync's DynamoDB tag table. See README.md.
 */
export { default as CatalogCacheHandler, entryTags } from "./incremental.js";
export { createUseCacheHandler } from "./use-cache.js";
export { TagSync, processSync, type SyncOptions, type SyncStats } from "./sync.js";
export { TagTable, seqPk, logPk, logSk, validStorefront, LOG_SPAN, type LogEntry } from "./table.js";
export { LogCursor } from "./log-cursor.js";
export { TagTimes } from "./tag-times.js";
export { LogPositions } from "./log-positions.js";
