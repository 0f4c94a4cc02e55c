// Shared by play.mjs (the browser test) and bench/hls-latency.mjs: launches Debian's headless
// Chromium with playwright-core and signs in to the ingest-server web page through its form.

import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** `--name value` / `--flag` command-line options into an object (values are strings). */
export function parseArgs(argv, defaults = {}) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[key] = 'true';
    else {
      if (Array.isArray(out[key])) out[key].push(next);
      else out[key] = next;
      i++;
    }
  }
  return out;
}

/** The key pair of `profile` in an AWS CLI credentials file (INI). */
export function readCredentials(path, profile = 'default') {
  let section = null;
  const found = {};
  for (const raw of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = line.match(/^\[\s*(.+?)\s*\]$/);
    if (m) {
      section = m[1];
      continue;
    }
    if (section !== profile) continue;
    const kv = line.match(/^([^=]+?)\s*=\s*(.*)$/);
    if (kv) found[kv[1].toLowerCase()] = kv[2];
  }
  if (!found.aws_access_key_id || !found.aws_secret_access_key) {
    throw new Error(`no [${profile}] key pair in ${path}`);
  }
  return { accessKeyId: found.aws_access_key_id, secretAccessKey: found.aws_secret_access_key };
}

/** Chromium and a context that accepts the server's local CA (not in Chromium's store). */
export async function launch() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  return { browser, context };
}

/** Records what a page reports: console errors, uncaught exceptions, failed requests. */
export function watch(page) {
  const log = { console: [], pageErrors: [], failedRequests: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') log.console.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => log.pageErrors.push(String(err)));
  page.on('requestfailed', (req) => {
    const url = req.url().split('?')[0];
    // The page cancels GetMediaForFragmentList once it has read the fragment's tags.
    if (url.endsWith('/getMediaForFragmentList') && req.failure()?.errorText === 'net::ERR_ABORTED') return;
    log.failedRequests.push(`${req.method()} ${url}: ${req.failure()?.errorText}`);
  });
  return log;
}

/** Opens the page at `url` and signs in through its form. */
export async function signIn(page, url, creds, { timeout = 20000 } = {}) {
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout });
  await page.locator('#access-key').waitFor({ state: 'visible', timeout });
  await page.fill('#access-key', creds.accessKeyId);
  await page.fill('#secret-key', creds.secretAccessKey);
  await page.click('#login-submit');
  await page.waitForFunction(
    () => !document.getElementById('app').hidden || document.getElementById('status').classList.contains('error'),
    null,
    { timeout },
  );
  const error = await page.evaluate(() => (document.getElementById('app').hidden ? document.getElementById('status').textContent : null));
  if (error) throw new Error(`sign-in failed: ${error}`);
}

/** Clicks the stream in the list (refreshing the list until it shows up). */
export async function pickStream(page, stream, { timeout = 20000 } = {}) {
  const button = page.locator(`#stream-list button[data-stream="${stream.replace(/"/g, '\\"')}"]`);
  const deadline = Date.now() + timeout;
  while (!(await button.count())) {
    if (Date.now() > deadline) throw new Error(`stream ${stream} is not in the page's list`);
    await page.click('#refresh-streams');
    await page.waitForTimeout(500);
  }
  await button.click();
}

/** Waits until the video plays (time advancing) or the page reports an error. */
export async function waitPlaying(page, { timeout = 45000 } = {}) {
  await page.waitForFunction(
    () => {
      const v = document.getElementById('video');
      const status = document.getElementById('status');
      return (v.currentTime > 0 && !v.paused && v.readyState >= 3) || status.classList.contains('error');
    },
    null,
    { timeout, polling: 250 },
  );
  const error = await page.evaluate(() => {
    const v = document.getElementById('video');
    const status = document.getElementById('status');
    return v.currentTime > 0 && !v.paused ? null : status.textContent;
  });
  if (error) throw new Error(`playback did not start: ${error}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
