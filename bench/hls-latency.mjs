#!/usr/bin/env node
// Live latency of the ingest-server web page's player (bench/hls-latency.sh runs this): headless
// Debian Chromium opens `/?stream=NAME&ll=0|1` with the keys put in sessionStorage beforehand
// (the page signs in from there and plays the stream LIVE with hls.js), waits WARMUP s after
// playback starts, then every INTERVAL ms samples
//
//   latency = Date.now() - hls.playingDate
//
// (hls.playingDate is the EXT-X-PROGRAM-DATE-TIME of the frame shown = its producer timestamp)
// for DURATION s. Prints one JSON object: the samples' median/p90/min/max, hls.js's own
// latency estimate, stalls, playback speed, whether the playlist had LL-HLS parts.
//
//   node bench/hls-latency.mjs --url https://127.0.0.1:PORT/ --credentials DATA/credentials \
//     --stream NAME --mode standard|ll [--warmup 10] [--duration 60] [--interval 500]
//
// Modes: `standard` = hls.js defaults with lowLatencyMode off (`?ll=0`: the playlist's parts are
// ignored, standard HLS latency); `ll` = hls.js defaults, whose lowLatencyMode is on (`?ll=1`).
// Exit 0 with a report, 3 when the server answers 501 for GetHLSStreamingSessionURL, 1 on errors.

import { createRequire } from 'node:module';

// playwright-core is installed in tests/browser (npm ci --prefix tests/browser).
try {
  createRequire(new URL('../tests/browser/package.json', import.meta.url)).resolve('playwright-core');
} catch {
  console.error('playwright-core is not installed: npm ci --prefix tests/browser');
  process.exit(1);
}
const { launch, parseArgs, readCredentials, waitPlaying, watch } = await import(new URL('../tests/browser/lib.mjs', import.meta.url));

const args = parseArgs(process.argv.slice(2), { warmup: '10', duration: '60', interval: '500', mode: 'standard', profile: 'default' });
if (!args.url || !args.credentials || !args.stream || !['standard', 'll'].includes(args.mode)) {
  console.error('usage: hls-latency.mjs --url URL --credentials FILE --stream NAME --mode standard|ll [--warmup 10] [--duration 60] [--interval 500]');
  process.exit(2);
}
const warmupMs = Number(args.warmup) * 1000;
const durationMs = Number(args.duration) * 1000;
const intervalMs = Number(args.interval);

const creds = readCredentials(args.credentials, args.profile);
const { browser, context } = await launch();
// The page signs in from sessionStorage (what its login form stores).
await context.addInitScript((stored) => {
  if (!sessionStorage.getItem('kvs-web-credentials')) sessionStorage.setItem('kvs-web-credentials', stored);
}, JSON.stringify({ ...creds, region: 'us-west-2' }));
const page = await context.newPage();
const log = watch(page);
const url = new URL(args.url);
url.searchParams.set('stream', args.stream);
url.searchParams.set('ll', args.mode === 'll' ? '1' : '0');

const report = { mode: args.mode, stream: args.stream, warmupSeconds: Number(args.warmup), durationSeconds: Number(args.duration), intervalMs };
let code = 0;
try {
  const tGoto = Date.now();
  await page.goto(url.toString(), { waitUntil: 'domcontentloaded' });
  try {
    await waitPlaying(page, { timeout: 60000 });
  } catch (err) {
    if (/not available on this server yet|NotImplemented/.test(err.message)) {
      report.notImplemented = err.message;
      code = 3;
    }
    throw err;
  }
  report.startupSeconds = (Date.now() - tGoto) / 1000;
  await page.waitForTimeout(warmupMs);
  // Sampling runs inside the page (no round trip per sample).
  Object.assign(report, await page.evaluate(async ({ durationMs, intervalMs }) => {
    const player = window.__player;
    const video = player.video;
    const samples = [];
    const hlsLatency = [];
    let stalls = 0;
    const onWaiting = () => stalls++;
    video.addEventListener('waiting', onWaiting);
    const q0 = video.getVideoPlaybackQuality?.();
    const ct0 = video.currentTime;
    const t0 = performance.now();
    let missing = 0;
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const at = player.playingDateMs();
        if (at == null) missing++;
        else samples.push(Date.now() - at);
        const l = player.hls?.latency;
        if (Number.isFinite(l)) hlsLatency.push(l * 1000);
        if (performance.now() - t0 >= durationMs) {
          clearInterval(timer);
          resolve();
        }
      }, intervalMs);
    });
    video.removeEventListener('waiting', onWaiting);
    const q1 = video.getVideoPlaybackQuality?.();
    const hls = player.hls;
    const level = hls?.levels?.[hls.currentLevel >= 0 ? hls.currentLevel : 0]?.details;
    return {
      samplesMs: samples,
      hlsLatencyMs: hlsLatency,
      missingSamples: missing,
      stalls,
      playbackSpeed: (video.currentTime - ct0) / ((performance.now() - t0) / 1000),
      droppedFrames: q1 && q0 ? q1.droppedVideoFrames - q0.droppedVideoFrames : null,
      lowLatencyMode: player.lowLatencyMode,
      lowLatencyPlaylist: player.lowLatencyPlaylist,
      targetDuration: level?.targetduration ?? null,
      partTarget: level?.partTarget ?? null,
      hlsTargetLatency: hls?.targetLatency ?? null,
      hlsVersion: window.Hls?.version ?? null,
    };
  }, { durationMs, intervalMs }));
  report.hlsErrors = await page.evaluate(() => window.__hlsErrors);
  // Non-fatal hls.js errors over the whole run; levelParsingError = live playlists that do
  // not line up with the previous reload (e.g. "discontinuity sequence mismatch").
  report.hlsWarnings = await page.evaluate(() => (window.__hlsWarnings || []).map((w) => ({ details: w.details, reason: w.reason.slice(0, 120) })));
} catch (err) {
  report.error = String(err.message || err);
  if (!code) code = 1;
}
report.pageErrors = log.pageErrors;
report.console = log.console.slice(0, 20);
await browser.close();

const stats = (xs) => {
  if (!xs?.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { n: s.length, median: q(0.5), p90: q(0.9), min: s[0], max: s[s.length - 1] };
};
report.latencyMs = stats(report.samplesMs);
report.hlsEstimateMs = stats(report.hlsLatencyMs);
console.log(JSON.stringify(report));
process.exit(code);
