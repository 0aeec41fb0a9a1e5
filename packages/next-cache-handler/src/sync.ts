/**
 * Keeps one process's tag knowledge in step with the tag table: the counter at start (the
 * floor: nothing rendered before it is trusted), then about once a second the counter again
 * and, when it moved, the log items from this instance's position on, so that a page request
 * never waits on DynamoDB. When DynamoDB fails, the handlers keep serving with what is known
 * and the sync says so in its log lines and metrics (fail-open).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

import { LogCursor } from "./log-cursor.js";
import { LogPositions } from "./log-positions.js";
import { TagTable, type LogEntry } from "./table.js";
import { TagTimes } from "./tag-times.js";

/**
 * Past this many unread positions, or this long without a successful read (log items live a
 * day), an instance drops what it has cached and starts again from the newest position:
 * reading that far back would be slower than rendering afresh, and could find items gone.
 */
const MAX_BEHIND = 10_000;
const MAX_SILENCE_MS = 60 * 60_000;
/** Positions voided in one poll at most. */
const VOIDS_PER_POLL = 25;
/**
 * The most positions read back for one entry's stamp: an entry stamped further back counts as
 * stale and re-renders (at 100 tags an item, 10,000 positions could be 60 MB of reads).
 */
const MAX_READ_BACK = 10_000;

export interface SyncOptions {
  /** How often the table is read (default 200 ms: see docs/data-model.md for the cost). */
  pollMs?: number;
  /**
   * How long a position stays empty before this instance voids it (default 3000 ms). Nothing
   * is lost whatever the value (the late writer takes a new position): too short makes slow
   * writers write twice, too long makes each poll re-read past the gap.
   */
  voidAfterMs?: number;
  /** The longest a request waits for the first read (default 3000 ms). */
  loadWaitMs?: number;
  /** How often the metrics line is written (default 60 000 ms; `CATALOG_TAG_METRICS_MS`). */
  metricsMs?: number;
  /** Where log and metric lines go (default: one JSON line on stdout). */
  emit?: (line: Record<string, unknown>) => void;
  /**
   * This instance's clock, the one Next stamps its `'use cache'` entries with (default
   * `performance.timeOrigin + performance.now()`).
   */
  now?: () => number;
}

/** What the sync has done, for tests, the benchmark and the metrics line. */
export interface SyncStats {
  /** Starts from the newest position (the first read, and after falling too far behind). */
  loads: number;
  polls: number;
  failures: number;
  tagsApplied: number;
  /** Positions this instance voided. */
  voided: number;
  /** When the table was last read successfully (this instance's clock; 0: never). */
  lastSuccessAt: number;
  /** Positions up to the counter's last read not applied yet. */
  behind: number;
}

export class TagSync {
  readonly times = new TagTimes();
  /** The same knowledge by log position, for caches shared between instances (`opennext.ts`). */
  readonly positions = new LogPositions(Number.POSITIVE_INFINITY);
  readonly stats: SyncStats = {
    loads: 0, polls: 0, failures: 0, tagsApplied: 0, voided: 0, lastSuccessAt: 0, behind: 0,
  };
  readonly now: () => number;
  private readonly opts: Required<Omit<SyncOptions, "emit" | "now">>;
  private readonly emit: (line: Record<string, unknown>) => void;
  /** Undefined until the first read has succeeded. */
  private cursor: LogCursor | undefined;
  private timer: NodeJS.Timeout | undefined;
  private metricsTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private firstLoad: Promise<void> | undefined;
  /**
   * When the latest read began, successful or not (a failing table is tried once per
   * `readWithin` period, not once per call), and when `revalidate` last wrote (`now`).
   */
  private readBegan = Number.NEGATIVE_INFINITY;
  private wroteAt = Number.NEGATIVE_INFINITY;
  /** The read `readWithin` is waiting on, shared by the requests that ask meanwhile. */
  private reading: Promise<void> | undefined;
  /** Read backs one after another: each lowers the floor the next one starts from. */
  private readingBack: Promise<unknown> = Promise.resolve();
  /** Counts since the last metrics line (`requests`: the table's count then). */
  private sinceMetrics = { polls: 0, failures: 0, requests: 0 };

  constructor(readonly table: TagTable, options: SyncOptions = {}) {
    this.opts = {
      pollMs: options.pollMs ?? 200,
      voidAfterMs: options.voidAfterMs ?? 3000,
      loadWaitMs: options.loadWaitMs ?? 3000,
      metricsMs: options.metricsMs ?? 60_000,
    };
    this.emit = options.emit ?? ((line) => console.log(JSON.stringify(line)));
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
  }

  /** Reads the table, then polls it until `stop`. Resolves after the first read. */
  start(): Promise<void> {
    this.firstLoad ??= this.tick();
    this.metricsTimer ??= setInterval(() => this.writeMetrics(), this.opts.metricsMs).unref();
    return this.firstLoad;
  }

  /** Waits for the first read, at most `loadWaitMs`: past that, requests render afresh. */
  async ready(): Promise<void> {
    const load = this.start();
    let timeout: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((resolve) => {
      timeout = setTimeout(resolve, this.opts.loadWaitMs).unref();
    });
    await Promise.race([load, wait]);
    clearTimeout(timeout);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.metricsTimer);
  }

  /** One read of the table now. */
  async refresh(): Promise<void> {
    try {
      const silent = this.stats.lastSuccessAt > 0 && this.now() - this.stats.lastSuccessAt > MAX_SILENCE_MS;
      const last = await this.table.last();
      const cursor = this.cursor;
      if (!cursor || silent || last - cursor.next >= MAX_BEHIND) this.restartAt(last);
      else if (last >= cursor.next) await this.readFrom(cursor, last);
      else this.stats.polls++;
      this.stats.behind = this.cursor!.behind(last);
      this.sinceMetrics.polls++;
      this.stats.lastSuccessAt = this.now();
    } catch (error) {
      this.failed(error, {
        level: "WARN",
        message: "tag table read failed; serving with the revalidations already known",
        knownSince: this.stats.lastSuccessAt || null,
      });
    }
  }

  /**
   * Reads the table unless a read began within `maxAgeMs` (for a process that is frozen
   * between requests, as on Lambda, instead of `start`'s polling); concurrent callers share
   * one read. Failures are logged and counted as `refresh` does.
   */
  async readWithin(maxAgeMs: number): Promise<void> {
    // A read counts if it began after both: one begun earlier may have missed this
    // process's own latest write.
    const need = Math.max(this.now() - maxAgeMs, this.wroteAt);
    const satisfied = () => this.readBegan >= need;
    if (satisfied()) return;
    await this.reading;
    if (satisfied()) return;
    this.reading ??= this.timedRefresh().finally(() => (this.reading = undefined));
    await this.reading;
  }

  private async timedRefresh(): Promise<void> {
    const began = this.now();
    await this.refresh();
    this.readBegan = began;
  }

  /**
   * A stamp for a render beginning now (see `log-positions.ts`): no higher than the counter
   * was when last read, so every data change the render may miss is logged past it.
   * `undefined` until the table has been read.
   */
  stamp(): number | undefined {
    return this.cursor ? this.cursor.next - 1 : undefined;
  }

  /**
   * Whether an entry stamped `stamp` under `tags` is stale, reading back the positions
   * between its stamp and where this process began following the log when needed. Without a
   * successful read every entry is stale.
   */
  async isStaleAt(tags: string[], stamp: number): Promise<boolean> {
    if (!this.cursor) return true;
    if (this.positions.unread(stamp)) {
      this.readingBack = this.readingBack.then(() => this.readBack(stamp)).catch((error) =>
        this.failed(error, { level: "WARN", message: "tag table read back failed; the entry re-renders" }),
      );
      await this.readingBack;
    }
    return this.positions.isStale(tags, stamp);
  }

  /** Reads back what `stamp` needs, unless that is more than `MAX_READ_BACK` positions. */
  private async readBack(stamp: number): Promise<void> {
    // Asked again here: an earlier read back may have lowered the floor, a restart raised it.
    const unread = this.positions.unread(stamp);
    if (!unread || unread.to - unread.from >= MAX_READ_BACK) return;
    this.positions.readBack(await this.table.readLog(unread.from, unread.to), unread.from);
  }

  /** Marks `tags` revalidated, here at once and in the table for every instance. */
  async revalidate(tags: string[]): Promise<void> {
    this.times.learn(tags, this.now());
    try {
      await this.table.revalidate(tags, Date.now());
      this.wroteAt = this.now();
    } catch (error) {
      this.failed(error, {
        level: "ERROR",
        message: "revalidateTag could not write the tag table: only this instance knows",
        tags,
      });
    }
  }

  /** Starts from the position after `last`: everything rendered until now counts as stale. */
  private restartAt(last: number): void {
    this.times.flush(this.now());
    this.cursor = new LogCursor(last + 1);
    this.positions.restart(last + 1);
    this.stats.loads++;
  }

  /** Reads positions from the cursor to `last`, applies what is new and voids old gaps. */
  private async readFrom(cursor: LogCursor, last: number): Promise<void> {
    const read = await this.table.readLog(cursor.next, last);
    const { fresh, toVoid } = cursor.take(read, last, this.now(), this.opts.voidAfterMs);
    this.apply(fresh);
    for (const position of toVoid.slice(0, VOIDS_PER_POLL)) {
      const entry = await this.table.voidAt(position);
      if (entry.tags.length === 0) this.stats.voided++;
      this.apply(cursor.take([entry], last, this.now(), this.opts.voidAfterMs).fresh);
    }
    this.stats.polls++;
  }

  /** Learns `entries` now: the time is taken after the read that found them answered. */
  private apply(entries: LogEntry[]): void {
    const at = this.now();
    for (const entry of entries) {
      if (entry.refused) {
        this.emit({
          level: "WARN",
          message: "a log item was not of catalog-sync's making; its tags were not all taken",
          storefront: this.table.storefront,
          position: entry.position,
          reason: entry.refused,
        });
      }
      this.times.learn(entry.tags, at);
      this.positions.learn(entry.tags, entry.position);
      this.stats.tagsApplied += entry.tags.length;
    }
  }

  /** Counts a failed table call and writes its log line. */
  private failed(error: unknown, line: Record<string, unknown>): void {
    this.stats.failures++;
    this.sinceMetrics.failures++;
    this.emit({ ...line, storefront: this.table.storefront, error: String(error) });
  }

  private async tick(): Promise<void> {
    await this.refresh();
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), this.opts.pollMs).unref();
    }
  }

  /**
   * One CloudWatch embedded-metric-format line: reads, failures, and how far behind this
   * instance is (`TagSyncStaleness`: ms since its last successful read; `TagSyncBehind`:
   * positions it has seen and not applied).
   */
  private writeMetrics(): void {
    const staleness = this.stats.lastSuccessAt ? this.now() - this.stats.lastSuccessAt : -1;
    this.emit({
      _aws: {
        Timestamp: Date.now(),
        CloudWatchMetrics: [
          {
            Namespace: "CatalogSync",
            Dimensions: [["storefront"]],
            Metrics: [
              { Name: "TagSyncReads", Unit: "Count" },
              { Name: "TagTableRequests", Unit: "Count" },
              { Name: "TagSyncFailures", Unit: "Count" },
              { Name: "TagSyncStaleness", Unit: "Milliseconds" },
              { Name: "TagSyncBehind", Unit: "Count" },
            ],
          },
        ],
      },
      storefront: this.table.storefront,
      TagSyncReads: this.sinceMetrics.polls,
      TagTableRequests: this.table.requests - this.sinceMetrics.requests,
      TagSyncFailures: this.sinceMetrics.failures,
      TagSyncStaleness: staleness,
      TagSyncBehind: this.stats.behind,
    });
    this.sinceMetrics = { polls: 0, failures: 0, requests: this.table.requests };
  }
}

/** The environment variable `name` as milliseconds; `undefined` when unset or empty. */
export function envMs(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${value} is not a number of milliseconds`);
  return n;
}

const GLOBAL = Symbol.for("@catalog-sync/next-cache-handler.sync");

/**
 * The process's one sync, configured from the environment: `CATALOG_TAG_TABLE`,
 * `CATALOG_STOREFRONT`, and optionally `CATALOG_TAG_POLL_MS`, `CATALOG_TAG_VOID_AFTER_MS`,
 * `CATALOG_TAG_METRICS_MS`. `poll: false` (OpenNext on Lambda) reads only when asked
 * (`readWithin`). The AWS SDK reads the region,
 * credentials and endpoint (`AWS_ENDPOINT_URL_DYNAMODB`) as usual. Kept on `globalThis`
 * because Next.js may load the two handler modules separately.
 */
export function processSync(poll = true): TagSync {
  const holder = globalThis as unknown as Record<symbol, TagSync | undefined>;
  if (!holder[GLOBAL]) {
    const env = process.env;
    const table = env.CATALOG_TAG_TABLE;
    const storefront = env.CATALOG_STOREFRONT;
    if (!table || !storefront) {
      throw new Error("@catalog-sync/next-cache-handler needs CATALOG_TAG_TABLE and CATALOG_STOREFRONT");
    }
    // A dead endpoint must not hold a poll for long: one retry, 2 s each.
    const client = new DynamoDBClient({
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 },
    });
    holder[GLOBAL] = new TagSync(new TagTable(client, table, storefront), {
      pollMs: envMs("CATALOG_TAG_POLL_MS"),
      voidAfterMs: envMs("CATALOG_TAG_VOID_AFTER_MS"),
      metricsMs: envMs("CATALOG_TAG_METRICS_MS"),
    });
    if (poll) void holder[GLOBAL].start();
  }
  return holder[GLOBAL];
}
