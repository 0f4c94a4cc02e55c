// The AWS SDK for JavaScript v3 Kinesis client, as applications use it in Node (its default
// NodeHttp2Handler: HTTP/2 for every call), against the ingest-server. Run by
// tests/e2e/test_kinesis_js.py, which passes the endpoint and stream names in the environment
// (credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the server's CA in
// NODE_EXTRA_CA_CERTS) and asserts on the JSON report this script prints on stdout.
//
// MODE=basic: create, put, get, delete (used over TLS and over plain-HTTP h2c).
// MODE=full: basic + enhanced fan-out: RegisterStreamConsumer, SubscribeToShard latency,
//            records after the client's GOAWAY, ResourceInUseException on an immediate
//            re-subscribe, ContinuationSequenceNumber resume, ResourceNotFoundException after
//            DeregisterStreamConsumer.
import http2 from "node:http2";
import { performance } from "node:perf_hooks";
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  PutRecordsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  DeregisterStreamConsumerCommand,
  SubscribeToShardCommand,
  DeleteStreamCommand,
} from "@aws-sdk/client-kinesis";

const env = process.env;
const MODE = env.MODE || "full";
const STREAM = env.STREAM;
const SUBSCRIPTION_SECS = Number(env.SUBSCRIPTION_SECS || "300");
const report = { mode: MODE, calls: [], sessions: [], errors: [] };
const t0 = performance.now();
const now = () => performance.now() - t0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const enc = new TextEncoder();
const dec = new TextDecoder();

// Watch every HTTP/2 session the SDK opens: ALPN protocol, and when the SDK closes it
// (session.close() sends GOAWAY(NO_ERROR)).
const origConnect = http2.connect;
http2.connect = (...args) => {
  const session = origConnect(...args);
  const info = { id: report.sessions.length, openedAt: now(), alpn: null, closedAt: null, remoteGoaway: null, error: null };
  report.sessions.push(info);
  session.on("connect", () => { info.alpn = session.alpnProtocol ?? null; });
  session.on("goaway", (code) => { info.remoteGoaway = code; });
  session.on("error", (e) => { info.error = String(e); });
  const close = session.close.bind(session);
  session.close = (...a) => { if (info.closedAt === null) info.closedAt = now(); return close(...a); };
  return session;
};

const client = new KinesisClient({ endpoint: env.ENDPOINT, region: env.AWS_REGION || "us-west-2", maxAttempts: 1 });

async function call(command) {
  const name = command.constructor.name.replace(/Command$/, "");
  const before = report.sessions.length;
  const out = await client.send(command);
  report.calls.push({ op: name, status: out.$metadata.httpStatusCode, requestId: out.$metadata.requestId ?? null,
                      sessions: report.sessions.slice(before).map((s) => s.id) });
  return out;
}

async function expectError(command, label) {
  try {
    await call(command);
    report.errors.push({ label, name: null });
  } catch (e) {
    report.errors.push({ label, name: e.name, message: e.message, status: e.$metadata?.httpStatusCode ?? null });
  }
}

async function waitActive(name) {
  for (let i = 0; i < 500; i++) {
    const s = (await call(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary;
    if (s.StreamStatus === "ACTIVE") return s;
    await sleep(20);
  }
  throw new Error(`stream ${name} not ACTIVE`);
}

async function basic() {
  await call(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 1 }));
  const s = await waitActive(STREAM);
  report.streamARN = s.StreamARN;
  const put = await call(new PutRecordCommand({ StreamName: STREAM, PartitionKey: "js", Data: enc.encode("hello from node") }));
  const batch = await call(new PutRecordsCommand({ StreamName: STREAM, Records: [
    { PartitionKey: "js", Data: Uint8Array.from([0, 1, 2, 255]) },
    { PartitionKey: "js", Data: enc.encode("third") },
  ] }));
  const it = await call(new GetShardIteratorCommand({ StreamName: STREAM, ShardId: "shardId-000000000000",
                                                      ShardIteratorType: "TRIM_HORIZON" }));
  const got = await call(new GetRecordsCommand({ ShardIterator: it.ShardIterator }));
  report.put = { shardId: put.ShardId, sequenceNumber: put.SequenceNumber,
                 batch: batch.Records.map((r) => r.SequenceNumber), failed: batch.FailedRecordCount };
  report.got = got.Records.map((r) => ({ seq: r.SequenceNumber, pk: r.PartitionKey, data: Buffer.from(r.Data).toString("base64"),
                                         arrival: r.ApproximateArrivalTimestamp instanceof Date ? r.ApproximateArrivalTimestamp.getTime() : null }));
  report.millisBehindLatest = got.MillisBehindLatest;
}

// Reads a subscription until `stop()` says so or it ends; records arrival times by data.
function consume(out, sink) {
  return (async () => {
    try {
      for await (const ev of out.EventStream) {
        if (!ev.SubscribeToShardEvent) { sink.other.push(Object.keys(ev)); continue; }
        const e = ev.SubscribeToShardEvent;
        sink.events += 1;
        sink.continuation = e.ContinuationSequenceNumber;
        sink.millisBehind.push(e.MillisBehindLatest);
        for (const r of e.Records) sink.records.push({ data: dec.decode(r.Data), seq: r.SequenceNumber, at: now() });
        if (sink.stop && sink.stop()) break;
      }
      sink.ended = "end";
    } catch (e) {
      sink.ended = `error: ${e.name}: ${e.message}`;
    }
    sink.endedAt = now();
  })();
}

async function full() {
  await basic();
  const arn = report.streamARN;
  const reg = await call(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: "js-efo" }));
  const consumerARN = reg.Consumer.ConsumerARN;
  report.consumer = { arn: consumerARN, status: reg.Consumer.ConsumerStatus };
  for (let i = 0; ; i++) {
    const d = await call(new DescribeStreamConsumerCommand({ ConsumerARN: consumerARN }));
    if (d.ConsumerDescription.ConsumerStatus === "ACTIVE") break;
    if (i > 500) throw new Error("consumer not ACTIVE");
    await sleep(20);
  }

  // Subscription 1 at LATEST: the call returns once the initial response arrives.
  const sessionsBefore = report.sessions.length;
  const subCalledAt = now();
  const out1 = await call(new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: "shardId-000000000000",
                                                        StartingPosition: { Type: "LATEST" } }));
  report.subscribe1 = { returnedAfterMs: now() - subCalledAt, sessions: report.sessions.slice(sessionsBefore).map((s) => s.id) };
  const sink1 = { records: [], events: 0, millisBehind: [], other: [], continuation: null, ended: null };
  const done1 = consume(out1, sink1);

  // An immediate second subscription for the same consumer and shard.
  await expectError(new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: "shardId-000000000000",
                                                  StartingPosition: { Type: "LATEST" } }), "resubscribe");

  // Records put one by one: each should arrive within a second of its put.
  report.latency = [];
  for (let i = 0; i < 5; i++) {
    const data = `live-${i}`;
    const putAt = now();
    const p = await call(new PutRecordCommand({ StreamName: STREAM, PartitionKey: "live", Data: enc.encode(data) }));
    const deadline = now() + 3000;
    while (!sink1.records.find((r) => r.data === data) && now() < deadline && !sink1.ended) await sleep(2);
    const got = sink1.records.find((r) => r.data === data);
    report.latency.push({ data, seq: p.SequenceNumber, putAt, receivedAt: got ? got.at : null, ms: got ? got.at - putAt : null });
    await sleep(100);
  }

  // The subscription ends after SUBSCRIPTION_SECS; a record put after its end is delivered by
  // the resumed subscription (AFTER_SEQUENCE_NUMBER = the last ContinuationSequenceNumber).
  await done1;
  report.subscribe1.ended = sink1.ended;
  report.subscribe1.endedAfterMs = sink1.endedAt - subCalledAt;
  report.subscribe1.events = sink1.events;
  report.subscribe1.records = sink1.records.map((r) => r.data);
  report.subscribe1.continuation = sink1.continuation;
  report.subscribe1.millisBehind = sink1.millisBehind;
  report.subscribe1.other = sink1.other;
  const gapPut = await call(new PutRecordCommand({ StreamName: STREAM, PartitionKey: "live", Data: enc.encode("during-gap") }));
  report.gapSeq = gapPut.SequenceNumber;
  const since = now() - subCalledAt;
  if (since < 5200) await sleep(5200 - since); // AWS: 5 s between subscriptions of one consumer+shard
  const out2 = await call(new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: "shardId-000000000000",
    StartingPosition: { Type: "AFTER_SEQUENCE_NUMBER", SequenceNumber: sink1.continuation } }));
  const sink2 = { records: [], events: 0, millisBehind: [], other: [], continuation: null, ended: null };
  sink2.stop = () => sink2.records.length >= 2;
  const done2 = consume(out2, sink2);
  await call(new PutRecordCommand({ StreamName: STREAM, PartitionKey: "live", Data: enc.encode("after-resume") }));
  const timeout = sleep(SUBSCRIPTION_SECS * 1000 + 3000).then(() => "timeout");
  report.subscribe2 = { finished: await Promise.race([done2.then(() => "done"), timeout]) };
  report.subscribe2.records = sink2.records.map((r) => ({ data: r.data, seq: r.seq }));

  // Deregistered: the consumer is gone, and so are its subscriptions.
  await call(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerARN }));
  for (let i = 0; i < 500; i++) {
    try { await call(new DescribeStreamConsumerCommand({ ConsumerARN: consumerARN })); } catch (e) {
      if (e.name === "ResourceNotFoundException") break;
      throw e;
    }
    await sleep(20);
  }
  await expectError(new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: "shardId-000000000000",
                                                  StartingPosition: { Type: "LATEST" } }), "deregistered");
}

try {
  if (MODE === "basic") await basic(); else await full();
  await call(new DeleteStreamCommand({ StreamName: STREAM, EnforceConsumerDeletion: true }));
  report.ok = true;
} catch (e) {
  report.ok = false;
  report.failure = `${e.name}: ${e.message}\n${e.stack}`;
}
client.destroy();
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(0);
