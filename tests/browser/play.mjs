#!/usr/bin/env node
// The browser test: headless Debian Chromium (playwright-core) opens the ingest-server web page,
// signs in through its form, picks a stream and plays it LIVE with hls.js. Passes when the
// video's currentTime advances by at least --min-advance seconds over --seconds seconds, hls.js
// reported no fatal error (window.__hlsErrors) and no playlist-consistency error at all (its
// non-fatal levelParsingError, e.g. "discontinuity sequence mismatch", in
// window.__hlsWarnings), the page threw nothing, and (with --expect-tag) the tag panel beside
// the video shows the tag. The report counts the media playlists the player loaded and the
// EXT-X-DISCONTINUITY tags in them (the session's DiscontinuityMode at work). Always saves a screenshot (--screenshot) and
// prints a JSON report on stdout. Exit status: 0 passed, 1 failed, 2 bad usage.
//
//   node tests/browser/play.mjs --url https://127.0.0.1:8443/ --credentials DATA_DIR/credentials \
//     --stream cam1 [--seconds 10] [--min-advance 8] [--screenshot tests/artifacts/browser-live.png] \
//     [--expect-tag site=lab-1] [--profile default]

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { launch, parseArgs, pickStream, readCredentials, signIn, sleep, waitPlaying, watch } from './lib.mjs';

const args = parseArgs(process.argv.slice(2), {
  seconds: '10',
  minAdvance: '8',
  screenshot: 'tests/artifacts/browser-live.png',
  profile: 'default',
  startTimeout: '45',
});
if (!args.url || !args.credentials || !args.stream) {
  console.error('usage: play.mjs --url URL --credentials FILE --stream NAME [--seconds 10] [--min-advance 8] [--screenshot PATH] [--expect-tag NAME=VALUE]');
  process.exit(2);
}

const report = {
  ok: false,
  stream: args.stream,
  screenshot: resolve(args.screenshot),
  failures: [],
  samples: [],
};
const fail = (msg) => report.failures.push(msg);

const creds = readCredentials(args.credentials, args.profile);
const { browser, context } = await launch();
const page = await context.newPage();
const log = watch(page);
const playlists = { loaded: 0, withDiscontinuity: 0, discontinuityTags: 0 };
page.on('response', async (response) => {
  if (!response.url().includes('/getHLSMediaPlaylist.m3u8')) return;
  try {
    const text = await response.text();
    const tags = (text.match(/^#EXT-X-DISCONTINUITY$/gm) || []).length;
    playlists.loaded++;
    playlists.discontinuityTags += tags;
    if (tags) playlists.withDiscontinuity++;
  } catch {
    // The page went away mid-response.
  }
});
try {
  await signIn(page, args.url, creds);
  await pickStream(page, args.stream);
  await waitPlaying(page, { timeout: Number(args.startTimeout) * 1000 });

  // Sample the playback position once a second over the measured window, both ends included.
  const seconds = Number(args.seconds);
  const t0 = Date.now();
  for (let k = 0; k <= seconds; k++) {
    await sleep(Math.max(0, t0 + k * 1000 - Date.now()));
    const s = await page.evaluate(() => {
      const v = window.__player.video;
      return {
        currentTime: v.currentTime,
        paused: v.paused,
        readyState: v.readyState,
        playingDateMs: window.__player.playingDateMs(),
      };
    });
    report.samples.push({ t: (Date.now() - t0) / 1000, ...s });
  }
  const first = report.samples[0];
  const last = report.samples[report.samples.length - 1];
  report.advance = +(last.currentTime - first.currentTime).toFixed(3);
  report.wallSeconds = +(last.t - first.t).toFixed(3);
  if (report.advance < Number(args.minAdvance)) {
    fail(`currentTime advanced ${report.advance} s in ${report.wallSeconds} s (needs >= ${args.minAdvance})`);
  }
  if (last.playingDateMs) report.latencySeconds = +((Date.now() - last.playingDateMs) / 1000).toFixed(2);

  if (args.expectTag) {
    const [name, value] = args.expectTag.split('=');
    try {
      await page.waitForFunction(
        ([n, v]) => [...document.querySelectorAll('#tag-rows tr')].some(
          (tr) => tr.querySelector('th')?.textContent === n && tr.querySelector('td')?.textContent === v,
        ),
        [name, value],
        { timeout: 20000 },
      );
      report.tagShown = args.expectTag;
    } catch {
      fail(`the tag panel never showed ${args.expectTag}`);
    }
  }
  report.fragmentInfo = await page.evaluate(() => ({
    fragment: document.getElementById('frag-number').textContent,
    producer: document.getElementById('frag-producer').textContent,
    server: document.getElementById('frag-server').textContent,
    tags: [...document.querySelectorAll('#tag-rows tr')].map((tr) => tr.textContent),
    timeline: document.getElementById('timeline-span').textContent,
  }));
} catch (err) {
  fail(String(err.message || err));
}

try {
  report.hlsErrors = await page.evaluate(() => window.__hlsErrors || null);
  report.hlsWarnings = await page.evaluate(() => window.__hlsWarnings || null);
  report.lowLatencyPlaylist = await page.evaluate(() => window.__player?.lowLatencyPlaylist ?? null);
  report.status = await page.evaluate(() => document.getElementById('status').textContent);
} catch (err) {
  fail(`could not read the page's state: ${err.message}`);
}
if (report.hlsErrors === null) fail('the page exposes no window.__hlsErrors');
else if (report.hlsErrors?.length) fail(`hls.js fatal errors: ${JSON.stringify(report.hlsErrors)}`);
const inconsistent = (report.hlsWarnings || []).filter((w) => w.details === 'levelParsingError' || /sequence mismatch/.test(w.reason));
if (inconsistent.length) fail(`hls.js found the live playlists inconsistent: ${JSON.stringify(inconsistent)}`);
report.playlists = playlists;
if (log.pageErrors.length) fail(`uncaught page errors: ${log.pageErrors.join('; ')}`);
report.console = log.console;
report.failedRequests = log.failedRequests;

try {
  mkdirSync(dirname(report.screenshot), { recursive: true });
  await page.screenshot({ path: report.screenshot, fullPage: true });
} catch (err) {
  fail(`screenshot failed: ${err.message}`);
}
await browser.close();

report.ok = report.failures.length === 0;
console.log(JSON.stringify(report, null, 2));
console.error(`screenshot: ${report.screenshot}`);
process.exit(report.ok ? 0 : 1);
