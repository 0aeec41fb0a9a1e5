/**
 * The tag table's items, read and written with the AWS SDK. The keys must match catalog-sync's
 * writer (core/src/tag_table.rs; docs/data-model.md, "Tag table"):
 * - tag item: pk `tags#{storefront}`, sk `{tag}`, `revalidatedAt` (ms since the epoch);
 * - log item: pk `log#{storefront}#{minute}`, sk `{at:013}#{tag}`, `tag`, `revalidatedAt`,
 *   `expiresAt` (epoch seconds, DynamoDB's TTL).
 */
import {
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DynamoDBClient,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";

export const LOG_BUCKET_MS = 60_000;
export const LOG_TTL_SECS = 24 * 60 * 60;
/** Tag items updated at once. */
const CONCURRENCY = 16;

/** One revalidation read from the table. */
export interface TagTime {
  tag: string;
  at: number;
}

export const tagsPk = (storefront: string) => `tags#${storefront}`;
export const logPk = (storefront: string, atMs: number) =>
  `log#${storefront}#${Math.floor(atMs / LOG_BUCKET_MS)}`;
export const logSk = (atMs: number, tag: string) => `${String(atMs).padStart(13, "0")}#${tag}`;

/** Whether `name` can name a storefront (as the writer checks it). */
export const validStorefront = (name: string) => /^[A-Za-z0-9_-]{1,64}$/.test(name);

/** The table of one storefront. Counts every request, for the metrics and the benchmark. */
export class TagTable {
  requests = 0;

  constructor(
    private readonly client: DynamoDBClient,
    readonly tableName: string,
    readonly storefront: string,
  ) {
    if (!validStorefront(storefront)) {
      throw new Error(`storefront name ${JSON.stringify(storefront)} is not 1 to 64 of A-Z a-z 0-9 _ -`);
    }
  }

  /** Every tag item of the storefront: the full load at start. */
  async loadAll(): Promise<TagTime[]> {
    return this.query({ pk: tagsPk(this.storefront) }, (item) => ({
      tag: item.sk?.S ?? "",
      at: Number(item.revalidatedAt?.N),
    }));
  }

  /** The log items written from `fromMs` to `toMs`, inclusive, over every minute between. */
  async readLog(fromMs: number, toMs: number): Promise<TagTime[]> {
    const out: TagTime[] = [];
    const first = Math.floor(fromMs / LOG_BUCKET_MS);
    const last = Math.floor(toMs / LOG_BUCKET_MS);
    for (let bucket = first; bucket <= last; bucket++) {
      const items = await this.query(
        { pk: logPk(this.storefront, bucket * LOG_BUCKET_MS), from: logSk(fromMs, "") },
        (item) => ({ tag: item.tag?.S ?? "", at: Number(item.revalidatedAt?.N) }),
      );
      out.push(...items);
    }
    return out;
  }

  /** Marks `tags` revalidated at `atMs`: the tag items (never moved back), then the log. */
  async revalidate(tags: string[], atMs: number): Promise<void> {
    for (let i = 0; i < tags.length; i += CONCURRENCY) {
      await Promise.all(tags.slice(i, i + CONCURRENCY).map((tag) => this.raise(tag, atMs)));
    }
    for (let i = 0; i < tags.length; i += 25) {
      await this.log(tags.slice(i, i + 25), atMs);
    }
  }

  private async raise(tag: string, atMs: number): Promise<void> {
    this.requests++;
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: tagsPk(this.storefront) }, sk: { S: tag } },
          UpdateExpression: "SET revalidatedAt = :at",
          ConditionExpression: "attribute_not_exists(revalidatedAt) OR revalidatedAt < :at",
          ExpressionAttributeValues: { ":at": { N: String(atMs) } },
        }),
      );
    } catch (e) {
      // A later time is already there: a retry, or a write that overtook this one.
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
  }

  private async log(tags: string[], atMs: number): Promise<void> {
    let requests: WriteRequest[] = tags.map((tag) => ({
      PutRequest: {
        Item: {
          pk: { S: logPk(this.storefront, atMs) },
          sk: { S: logSk(atMs, tag) },
          tag: { S: tag },
          revalidatedAt: { N: String(atMs) },
          expiresAt: { N: String(Math.floor(atMs / 1000) + LOG_TTL_SECS) },
        },
      },
    }));
    for (let round = 0; requests.length > 0; round++) {
      if (round === 5) throw new Error(`${requests.length} log items still unprocessed`);
      if (round > 0) await new Promise((r) => setTimeout(r, 50 << round));
      this.requests++;
      const out = await this.client.send(
        new BatchWriteItemCommand({ RequestItems: { [this.tableName]: requests } }),
      );
      requests = out.UnprocessedItems?.[this.tableName] ?? [];
    }
  }

  /** Every page of a Query of partition `pk`, from sort key `from` on. */
  private async query<T>(
    key: { pk: string; from?: string },
    read: (item: Record<string, AttributeValue>) => T,
  ): Promise<T[]> {
    const out: T[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      this.requests++;
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: key.from === undefined ? "pk = :pk" : "pk = :pk AND sk >= :from",
          ExpressionAttributeValues: {
            ":pk": { S: key.pk },
            ...(key.from === undefined ? {} : { ":from": { S: key.from } }),
          },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) out.push(read(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }
}
