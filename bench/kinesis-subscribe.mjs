// SubscribeToShard (enhanced fan-out) delivery latency with the AWS SDK for JavaScript v3
// (@aws-sdk/client-kinesis in Node: HTTP/2, h2c prior knowledge over http://, ALPN h2 over
// https://). loadgen's HTTP/1.1 client cannot hold an HTTP/2 event stream, hence this script.
//
//   node kinesis-subscribe.mjs --endpoint URL [--credentials FILE] [--region R] [--stream S]
//        [--shards 4] [--rate 200] [--batch 10] [--record-bytes 1024] [--duration 30]
//        [--label NAME] [--out FILE] [--http1]
//
// Creates the stream (waits for ACTIVE), registers a consumer (waits for ACTIVE), subscribes
// to every shard from LATEST, then a producer puts records at --rate records/s (PutRecords of
// --batch) for --duration s. Each record's first 12 bytes are "KBN1" + the send time in
// microseconds since the epoch (u64 big-endian, the same stamp as loadgen's); delivery latency
// = arrival on the event stream - send time, same process, same clock.
// --http1 uses the SDK's HTTP/1.1 handler (servers without HTTP/2: kinesalite, moto) to show how
// far they get. Prints one JSON object (also to --out); "supported": false names the stage and
// error where a server stops (kinesalite and moto have no SubscribeToShard).
// HTTPS: pass the server's CA with NODE_EXTRA_CA_CERTS.

import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  SubscribeToShardCommand,
  PutRecordsCommand,
  DeregisterStreamConsumerCommand,
  waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";

function parseArgs(argv) {
  const o = {
    endpoint: null, credentials: null, region: "us-west-2", stream: "subscribe-bench",
    shards: 4, rate: 200, batch: 10, recordBytes: 1024, duration: 30, label: "server",
    out: null, http1: false, consumer: "bench-consumer",
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    switch (k) {
      case "--endpoint": o.endpoint = v(); break;
      case "--credentials": o.credentials = v(); break;
      case "--region": o.region = v(); break;
      case "--stream": o.stream = v(); break;
      case "--shards": o.shards = Number(v()); break;
      case "--rate": o.rate = Number(v()); break;
      case "--batch": o.batch = Number(v()); break;
      case "--record-bytes": o.recordBytes = Number(v()); break;
      case "--duration": o.duration = Number(v()); break;
      case "--label": o.label = v(); break;
      case "--out": o.out = v(); break;
      case "--consumer": o.consumer = v(); break;
      case "--http1": o.http1 = true; break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!o.endpoint) throw new Error("--endpoint is required");
  if (o.recordBytes < 12) throw new Error("--record-bytes must be at least 12");
  return o;
}

// [default] profile of an AWS credentials file, else the first with keys; dummy keys without one.
function readCredentials(path) {
  if (!path) return { accessKeyId: "AKIDLOADGENBENCH", secretAccessKey: "loadgen-secret" };
  const profiles = {};
  let cur = null;
  for (const raw of readFileSync(path, "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const m = line.match(/^\[(.+)\]$/);
    if (m) { cur = profiles[m[1].trim()] ??= {}; continue; }
    const eq = line.indexOf("=");
    if (cur && eq > 0) cur[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const has = (p) => p && p.aws_access_key_id && p.aws_secret_access_key;
  const p = has(profiles.default) ? profiles.default : Object.values(profiles).find(has);
  if (!p) throw new Error(`${path}: no profile with keys`);
  return { accessKeyId: p.aws_access_key_id, secretAccessKey: p.aws_secret_access_key };
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function quantiles(values) {
  if (values.length === 0) return { count: 0 };
  const s = Float64Array.from(values).sort();
  const q = (p) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 100) / 100;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { count: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: q(1), mean: Math.round(mean * 100) / 100 };
}

function stampOf(data) {
  if (data.length < 12 || data[0] !== 0x4b || data[1] !== 0x42 || data[2] !== 0x4e || data[3] !== 0x31) return null;
  return Number(Buffer.from(data.buffer, data.byteOffset + 4, 8).readBigUInt64BE(0));
}

async function main() {
  const o = parseArgs(process.argv);
  const result = {
    kind: "kinesis-subscribe", label: o.label, endpoint: o.endpoint, client: "@aws-sdk/client-kinesis",
    transport: o.http1 ? "HTTP/1.1 (NodeHttpHandler)" : "HTTP/2 (NodeHttp2Handler, the SDK's default)",
    stream: o.stream, shards: o.shards, rate_records_per_s: o.rate, batch: o.batch,
    record_bytes: o.recordBytes, duration_s: o.duration, supported: true,
  };
  let stage = "setup";
  const config = {
    endpoint: o.endpoint, region: o.region, credentials: readCredentials(o.credentials), maxAttempts: 2,
  };
  if (o.http1) config.requestHandler = new NodeHttpHandler();
  const client = new KinesisClient(config);
  const producer = new KinesisClient(config);
  let consumerArn = null;
  try {
    stage = "CreateStream";
    try {
      await client.send(new CreateStreamCommand({ StreamName: o.stream, ShardCount: o.shards }));
    } catch (e) {
      if (e.name !== "ResourceInUseException") throw e;
    }
    await waitUntilStreamExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { StreamName: o.stream });
    const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName: o.stream }));
    const streamArn = summary.StreamDescriptionSummary.StreamARN;
    const shards = (await client.send(new ListShardsCommand({ StreamName: o.stream }))).Shards.map((s) => s.ShardId);

    stage = "RegisterStreamConsumer";
    const reg = await client.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: o.consumer }));
    consumerArn = reg.Consumer.ConsumerARN;
    for (let i = 0; ; i++) {
      const d = await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumerArn }));
      if (d.ConsumerDescription.ConsumerStatus === "ACTIVE") break;
      if (i > 300) throw new Error(`consumer not ACTIVE: ${d.ConsumerDescription.ConsumerStatus}`);
      await sleep(200);
    }

    stage = "SubscribeToShard";
    const latencies = [];
    let received = 0;
    let events = 0;
    let resubscribes = 0;
    let stop = false;
    const subErrors = [];
    const subscribeT0 = performance.now();
    const firstResponses = [];
    // One subscription per shard; resumed from the continuation sequence number if the
    // server ends it early (AWS ends them after 5 minutes).
    const subscribe = async (shardId, position) => {
      const t = performance.now();
      const resp = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: shardId, StartingPosition: position }));
      firstResponses.push(performance.now() - t);
      return resp;
    };
    const loops = [];
    const started = [];
    for (const shardId of shards) {
      const resp = await subscribe(shardId, { Type: "LATEST" });
      started.push(shardId);
      loops.push((async () => {
        let stream = resp.EventStream;
        let cont = null;
        while (!stop) {
          try {
            for await (const ev of stream) {
              const e = ev.SubscribeToShardEvent;
              if (!e) continue;
              events++;
              const at = nowUs();
              for (const r of e.Records ?? []) {
                const ts = stampOf(r.Data);
                if (ts !== null) { latencies.push((at - ts) / 1000); received++; }
              }
              cont = e.ContinuationSequenceNumber ?? cont;
              if (stop) break;
            }
          } catch (err) {
            if (stop) break;
            subErrors.push(`${shardId}: ${err.name}: ${err.message}`);
          }
          if (stop) break;
          // Ended early: resubscribe after the 5 s a consumer must wait.
          resubscribes++;
          await sleep(5500);
          const position = cont ? { Type: "AFTER_SEQUENCE_NUMBER", SequenceNumber: cont } : { Type: "LATEST" };
          try {
            stream = (await subscribe(shardId, position)).EventStream;
          } catch (err) {
            subErrors.push(`${shardId} resubscribe: ${err.name}: ${err.message}`);
            await sleep(1000);
          }
        }
      })());
    }
    result.subscribe_setup_ms = Math.round(performance.now() - subscribeT0);
    result.subscribe_call_ms = quantiles(firstResponses);

    stage = "PutRecords";
    const putLatencies = [];
    const putErrors = [];
    let put = 0;
    const interval = (o.batch / o.rate) * 1000;
    const t0 = performance.now();
    const data = Buffer.alloc(o.recordBytes, 0x61);
    data.write("KBN1", 0, "ascii");
    let k = 0;
    const inflight = new Set();
    while (true) {
      const at = t0 + k * interval;
      if (at - t0 >= o.duration * 1000) break;
      const wait = at - performance.now();
      if (wait > 0) await sleep(wait);
      const stamp = BigInt(nowUs());
      const records = [];
      for (let i = 0; i < o.batch; i++) {
        const d = Buffer.from(data);
        d.writeBigUInt64BE(stamp, 4);
        records.push({ Data: d, PartitionKey: `sub-${k}-${i}` });
      }
      const t = performance.now();
      const p = producer.send(new PutRecordsCommand({ StreamName: o.stream, Records: records }))
        .then((r) => { putLatencies.push(performance.now() - t); put += o.batch - (r.FailedRecordCount ?? 0); })
        .catch((e) => { if (putErrors.length < 5) putErrors.push(`${e.name}: ${e.message}`); })
        .finally(() => inflight.delete(p));
      inflight.add(p);
      k++;
    }
    await Promise.all([...inflight]);
    const putSecs = (performance.now() - t0) / 1000;
    const graceEnd = performance.now() + 5000;
    while (received < put && performance.now() < graceEnd) await sleep(20);
    stop = true;

    Object.assign(result, {
      measured_s: Math.round(putSecs * 100) / 100,
      records_put: put,
      records_received: received,
      events,
      resubscribes,
      delivery_ms: quantiles(latencies),
      put_records_ms: quantiles(putLatencies),
      put_errors: putErrors,
      subscription_errors: subErrors.slice(0, 5),
    });
  } catch (e) {
    result.supported = false;
    result.stage = stage;
    result.error = `${e.name}: ${e.message}`.slice(0, 300);
  }
  if (consumerArn) {
    try { await client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerArn })); } catch { /* best effort */ }
  }
  const text = JSON.stringify(result, null, 2);
  if (o.out) writeFileSync(o.out, text + "\n");
  console.log(text);
  // Open HTTP/2 sessions (the subscriptions) would keep Node alive.
  process.exit(result.supported ? 0 : 2);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
