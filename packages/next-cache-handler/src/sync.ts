/**
 * Keeps one process's tag times in step with the tag table: the whole storefront partition at
 * start, then the change log about once a second, so that a page request never waits on
 * DynamoDB. When DynamoDB fails, the handlers keep serving with the times they have and the
 * sync says so in its log lines and metrics (fail-open).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

import { TagTable, type TagTime } from "./table.js";
import { TagTimes } from "./tag-times.js";

export interface SyncOptions {
  /** How often the change log is read (default 1000 ms). */
  pollMs?: number;
  /**
   * How far back each log read starts before the previous one did (default 10 000 ms): a
   * writer's time is taken before its write lands, and another machine's clock may differ.
   * It must exceed the writers' timeout (the tag-revalidator's is 5 s).
   */
  lookbackMs?: number;
  /** Clock-skew margin (default 250 ms); see `TagTimes`. */
  marginMs?: number;
  /** The longest a request waits for the first full load (default 3000 ms). */
  loadWaitMs?: number;
  /** How often the metrics line is written (default 60 000 ms; `CATALOG_TAG_METRICS_MS`). */
  metricsMs?: number;
  /** Where log and metric lines go (default: one JSON line on stdout). */
  emit?: (line: Record<string, unknown>) => void;
  now?: () => number;
}

/** What the sync has done, for tests, the benchmark and the metrics line. */
export interface SyncStats {
  loads: number;
  polls: number;
  failures: number;
  tagsApplied: number;
  /** When the table was last read successfully (ms since the epoch; 0: never). */
  lastSuccessAt: number;
}

export class TagSync {
  readonly times: TagTimes;
  readonly stats: SyncStats = { loads: 0, polls: 0, failures: 0, tagsApplied: 0, lastSuccessAt: 0 };
  private readonly opts: Required<Omit<SyncOptions, "emit" | "now">>;
  private readonly emit: (line: Record<string, unknown>) => void;
  private readonly now: () => number;
  /** Where the next log read starts; undefined until a full load has succeeded. */
  private cursor: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private metricsTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private firstLoad: Promise<void> | undefined;
  /** Counts since the last metrics line (`requests`: the table's count then). */
  private sinceMetrics = { polls: 0, failures: 0, requests: 0 };

  constructor(readonly table: TagTable, options: SyncOptions = {}) {
    this.opts = {
      pollMs: options.pollMs ?? 1000,
      lookbackMs: options.lookbackMs ?? 10_000,
      marginMs: options.marginMs ?? 250,
      loadWaitMs: options.loadWaitMs ?? 3000,
      metricsMs: options.metricsMs ?? 60_000,
    };
    this.times = new TagTimes(this.opts.marginMs);
    this.emit = options.emit ?? ((line) => console.log(JSON.stringify(line)));
    this.now = options.now ?? Date.now;
  }

  /** Loads every tag time, then polls the log until `stop`. Resolves after the first load. */
  start(): Promise<void> {
    this.firstLoad ??= this.tick();
    this.metricsTimer ??= setInterval(() => this.writeMetrics(), this.opts.metricsMs).unref();
    return this.firstLoad;
  }

  /** Waits for the first load, at most `loadWaitMs`: past that, requests are served anyway. */
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

  /** One read of the table now (the full load until one succeeds, else the log). */
  async refresh(): Promise<void> {
    const started = this.now();
    try {
      const needsLoad =
        this.cursor === undefined || started - this.cursor > 5 * 60_000;
      const read: TagTime[] = needsLoad
        ? await this.table.loadAll()
        : await this.table.readLog(this.cursor!, started + this.opts.marginMs);
      for (const { tag, at } of read) this.times.raise(tag, at);
      this.stats.tagsApplied += read.length;
      if (needsLoad) this.stats.loads++;
      else this.stats.polls++;
      this.sinceMetrics.polls++;
      this.stats.lastSuccessAt = started;
      this.cursor = started - this.opts.lookbackMs;
    } catch (error) {
      this.failed(error, {
        level: "WARN",
        message: "tag table read failed; serving with the tag times already known",
        knownSince: this.stats.lastSuccessAt || null,
      });
    }
  }

  /** Marks `tags` revalidated now, here at once and in the table for every instance. */
  async revalidate(tags: string[]): Promise<void> {
    const at = this.now();
    for (const tag of tags) this.times.raise(tag, at);
    try {
      await this.table.revalidate(tags, at);
    } catch (error) {
      this.failed(error, {
        level: "ERROR",
        message: "revalidateTag could not write the tag table: only this instance knows",
        tags,
      });
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

  /** One CloudWatch embedded-metric-format line: reads, failures and how old the times are. */
  private writeMetrics(): void {
    const staleness = this.stats.lastSuccessAt ? this.now() - this.stats.lastSuccessAt : -1;
    this.emit({
      _aws: {
        Timestamp: this.now(),
        CloudWatchMetrics: [
          {
            Namespace: "CatalogSync",
            Dimensions: [["storefront"]],
            Metrics: [
              { Name: "TagSyncReads", Unit: "Count" },
              { Name: "TagTableRequests", Unit: "Count" },
              { Name: "TagSyncFailures", Unit: "Count" },
              { Name: "TagSyncStaleness", Unit: "Milliseconds" },
            ],
          },
        ],
      },
      storefront: this.table.storefront,
      TagSyncReads: this.sinceMetrics.polls,
      TagTableRequests: this.table.requests - this.sinceMetrics.requests,
      TagSyncFailures: this.sinceMetrics.failures,
      TagSyncStaleness: staleness,
    });
    this.sinceMetrics = { polls: 0, failures: 0, requests: this.table.requests };
  }
}

const GLOBAL = Symbol.for("@catalog-sync/next-cache-handler.sync");

/**
 * The process's one sync, configured from the environment: `CATALOG_TAG_TABLE`,
 * `CATALOG_STOREFRONT`, and optionally `CATALOG_TAG_POLL_MS`, `CATALOG_TAG_LOOKBACK_MS`,
 * `CATALOG_TAG_MARGIN_MS`, `CATALOG_TAG_METRICS_MS`. The AWS SDK reads the region,
 * credentials and endpoint (`AWS_ENDPOINT_URL_DYNAMODB`) as usual. Kept on `globalThis`
 * because Next.js may load the two handler modules separately.
 */
export function processSync(): TagSync {
  const holder = globalThis as unknown as Record<symbol, TagSync | undefined>;
  if (!holder[GLOBAL]) {
    const env = process.env;
    const table = env.CATALOG_TAG_TABLE;
    const storefront = env.CATALOG_STOREFRONT;
    if (!table || !storefront) {
      throw new Error("@catalog-sync/next-cache-handler needs CATALOG_TAG_TABLE and CATALOG_STOREFRONT");
    }
    const number = (name: string) => {
      const value = env[name];
      if (value === undefined || value === "") return undefined;
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${value} is not a number of milliseconds`);
      return n;
    };
    // A dead endpoint must not hold a poll for long: one retry, 2 s each.
    const client = new DynamoDBClient({
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 },
    });
    holder[GLOBAL] = new TagSync(new TagTable(client, table, storefront), {
      pollMs: number("CATALOG_TAG_POLL_MS"),
      lookbackMs: number("CATALOG_TAG_LOOKBACK_MS"),
      marginMs: number("CATALOG_TAG_MARGIN_MS"),
      metricsMs: number("CATALOG_TAG_METRICS_MS"),
    });
    void holder[GLOBAL].start();
  }
  return holder[GLOBAL];
}
