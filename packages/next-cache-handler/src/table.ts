/**
 * The tag table's items, read and written with the AWS SDK. The keys and the write protocol
 * must match catalog-sync's writer (core/src/tag_table.rs; docs/data-model.md, "Tag table"):
 * - counter: pk `seq#{storefront}`, sk `seq`, `last` (the last log position handed out);
 * - log item: pk `log#{storefront}#{position / LOG_SPAN}`, sk `{position:020}`, `tags` (a
 *   string set), `revalidatedAt` (the writer's clock), `expiresAt` (epoch seconds, TTL); a
 *   reader that gave up on a position puts `void: true` there instead, only if it is empty.
 */
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
} from "@aws-sdk/client-dynamodb";

export const LOG_SPAN = 1000;
export const LOG_TTL_SECS = 24 * 60 * 60;
export const LOG_ITEM_TAGS = 100;
export const SEQ_SK = "seq";
/** Positions tried for one log item before the write fails (as the Rust writer). */
const APPEND_ATTEMPTS = 5;

/** One log position as read: the tags it revalidated (none for a void). */
export interface LogEntry {
  position: number;
  tags: string[];
  /** Why the item's tags were not taken (a writer other than catalog-sync's made it). */
  refused?: string;
  /** The writer's time (ms since the epoch, its clock), for the lag metric only. */
  at?: number;
}

export const seqPk = (storefront: string) => `seq#${storefront}`;
export const logPk = (storefront: string, position: number) =>
  `log#${storefront}#${Math.floor(position / LOG_SPAN)}`;
export const logSk = (position: number) => String(position).padStart(20, "0");

/** Whether `name` can name a storefront (as the writer checks it). */
export const validStorefront = (name: string) => /^[A-Za-z0-9_-]{1,64}$/.test(name);

/** For tests: what a slow writer does between taking a position and putting its item. */
export interface WriteHooks {
  afterReserve?: (position: number) => Promise<void>;
}

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

  /**
   * The last position handed out (0: none yet). An eventually consistent read (half the
   * price, and this is the read every poll makes): a value behind the counter only means the
   * newest positions are read at a later poll, never that one is skipped.
   */
  async last(): Promise<number> {
    this.requests++;
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: seqPk(this.storefront) }, sk: { S: SEQ_SK } },
      }),
    );
    return Number(out.Item?.last?.N ?? 0);
  }

  /** The log items at positions `from` to `to`, inclusive, over every partition between. */
  async readLog(from: number, to: number): Promise<LogEntry[]> {
    const out: LogEntry[] = [];
    for (let part = Math.floor(from / LOG_SPAN); part <= Math.floor(to / LOG_SPAN); part++) {
      out.push(...(await this.query(logPk(this.storefront, part * LOG_SPAN), logSk(from), logSk(to))));
    }
    return out;
  }

  /**
   * Gives up on `position`: puts a void there unless its item landed meanwhile; either way,
   * returns what the position holds now (the writer of a voided position takes another).
   */
  async voidAt(position: number): Promise<LogEntry> {
    const key = { pk: { S: logPk(this.storefront, position) }, sk: { S: logSk(position) } };
    this.requests++;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { ...key, void: { BOOL: true }, expiresAt: { N: String(expiresAt(Date.now())) } },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return { position, tags: [] };
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
    this.requests++;
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return entryOf(out.Item ?? {});
  }

  /** Marks `tags` revalidated at `atMs` (this machine's clock): one log item per 100 tags. */
  async revalidate(tags: string[], atMs: number, hooks: WriteHooks = {}): Promise<void> {
    for (let i = 0; i < tags.length; i += LOG_ITEM_TAGS) {
      await this.append(tags.slice(i, i + LOG_ITEM_TAGS), atMs, hooks);
    }
  }

  /** One log item: a position from the counter, the item put there unless a reader voided it. */
  private async append(tags: string[], atMs: number, hooks: WriteHooks): Promise<void> {
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const position = await this.reserve();
      await hooks.afterReserve?.(position);
      if (await this.putLog(position, [...new Set(tags)], atMs)) return;
    }
    throw new Error(`${APPEND_ATTEMPTS} log positions in a row were voided by readers`);
  }

  private async reserve(): Promise<number> {
    this.requests++;
    const out = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: seqPk(this.storefront) }, sk: { S: SEQ_SK } },
        UpdateExpression: "ADD #last :one",
        ExpressionAttributeNames: { "#last": "last" },
        ExpressionAttributeValues: { ":one": { N: "1" } },
        ReturnValues: "UPDATED_NEW",
      }),
    );
    return Number(out.Attributes?.last?.N);
  }

  private async putLog(position: number, tags: string[], atMs: number): Promise<boolean> {
    this.requests++;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            pk: { S: logPk(this.storefront, position) },
            sk: { S: logSk(position) },
            tags: { SS: tags },
            revalidatedAt: { N: String(atMs) },
            expiresAt: { N: String(expiresAt(atMs)) },
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  /** Every page of a consistent Query of partition `pk`, sort keys `from` to `to`. */
  private async query(pk: string, from: string, to: string): Promise<LogEntry[]> {
    const out: LogEntry[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      this.requests++;
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
          ExpressionAttributeValues: { ":pk": { S: pk }, ":from": { S: from }, ":to": { S: to } },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) out.push(entryOf(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }
}

/** The epoch second at which DynamoDB may delete a log item written at `atMs`. */
export const expiresAt = (atMs: number) => Math.floor(atMs / 1000) + LOG_TTL_SECS;

/** The longest tag (core/src/tags.rs `MAX_TAG_LEN`, and Next.js's own limit). */
export const MAX_TAG_LEN = 256;

/**
 * The tags of a log item an instance takes: none from an item with more than
 * `LOG_ITEM_TAGS` (no writer of catalog-sync's makes one: another instance of any storefront
 * could, to make every instance drop its cache at once), and only tags of the shape
 * catalog-sync writes (1 to 256 bytes, no whitespace or control characters).
 */
export function readableTags(tags: string[]): { tags: string[]; refused?: string } {
  if (tags.length > LOG_ITEM_TAGS) {
    return { tags: [], refused: `${tags.length} tags in one log item (at most ${LOG_ITEM_TAGS})` };
  }
  const valid = (tag: string) =>
    tag.length > 0 && Buffer.byteLength(tag) <= MAX_TAG_LEN && !/[\s\p{Cc}]/u.test(tag);
  const kept = tags.filter(valid);
  return kept.length === tags.length
    ? { tags: kept }
    : { tags: kept, refused: `${tags.length - kept.length} tags not of a cache tag's shape` };
}

/** A log item as read: a void holds no tags. */
function entryOf(item: Record<string, AttributeValue>): LogEntry {
  const at = Number(item.revalidatedAt?.N);
  return {
    position: Number(item.sk?.S),
    ...readableTags(item.tags?.SS ?? []),
    ...(Number.isFinite(at) ? { at } : {}),
  };
}
