// The ingest-server web page: sign in (SigV4 in the browser with aws4fetch), list streams, play
// one live with hls.js, scrub back over the stored fragments, show each fragment's tags.
//
// Every API call is a signed POST to this page's own origin (the server serves every API on
// both of its listeners). The keys live in sessionStorage only: gone when the tab closes.
//
// Query parameters: `stream=NAME` plays that stream after sign-in; `ll=0` turns hls.js
// lowLatencyMode off (standard HLS behaviour even when the playlist has LL-HLS parts).
// Hooks for tests and benchmarks: `window.__hlsErrors` (every fatal hls.js error),
// `window.__hlsWarnings` (the non-fatal ones, at most 200) and `window.__player` (see the end
// of this file).

import { AwsClient } from './vendor/aws4fetch-1.0.20/aws4fetch.esm.mjs';
import { fragmentMetadata, scanTags } from './ebml.mjs';

const STORAGE_KEY = 'kvs-web-credentials';
const TIMELINE_WINDOW_MS = 3600 * 1000; // the last hour (or the retention, if shorter)
const TIMELINE_REFRESH_MS = 5000;
const SESSION_EXPIRES_S = 43200; // the longest session AWS allows
const MAX_LIST_PAGES = 50;
const GAP_TOLERANCE_MS = 1000; // fragments closer than this draw as one stored range
const META_CACHE_SIZE = 64;
const params = new URLSearchParams(location.search);

const $ = (id) => document.getElementById(id);
const el = {
  status: $('status'), login: $('login'), loginForm: $('login-form'), sessionForm: $('session-form'),
  accessKey: $('access-key'), secretKey: $('secret-key'), region: $('region'), app: $('app'),
  account: $('account'), whoami: $('whoami'), logout: $('logout'), streamsNav: document.querySelector('.streams'),
  streamList: $('stream-list'), refreshStreams: $('refresh-streams'), playerTitle: $('player-title'),
  mode: $('mode'), goLive: $('go-live'), video: $('video'), playingAt: $('playing-at'), latency: $('latency'),
  fragNumber: $('frag-number'), fragProducer: $('frag-producer'), fragServer: $('frag-server'),
  tagRows: $('tag-rows'), timelineBox: $('timeline-box'), ranges: $('ranges'), timeline: $('timeline'),
  timelineSpan: $('timeline-span'), timelineStart: $('timeline-start'), timelineEnd: $('timeline-end'),
};

window.__hlsErrors = [];
window.__hlsWarnings = [];

const state = {
  client: null, // AwsClient once signed in
  streams: [],
  stream: null, // StreamInfo of the selected stream
  mode: null, // 'LIVE' | 'REPLAY' | 'URL'
  hls: null,
  sessionUrl: null,
  generation: 0, // bumped by every new playback: late answers of older ones are dropped
  recoveries: 0,
  playingFrag: null, // the hls.js fragment playback is in (FRAG_CHANGED)
  fragments: new Map(), // FragmentNumber -> { number, startMs, durationMs }
  sorted: [], // the same, by producer timestamp
  windowStartMs: 0,
  timelineTimer: null,
  tickTimer: null,
  scrubbing: false,
  scrubTimer: null,
  shownFragment: null,
  metaCache: new Map(), // FragmentNumber -> Promise<metadata>
  lastListAt: 0,
};

// ------------------------------------------------------------------------------ helpers
class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code || `HTTP ${status}`}: ${message || 'request failed'}`);
    this.status = status;
    this.code = code;
  }
}

/** Shows `text` in the status line; `kind` 'error' (final) or 'warn' (being retried). */
function setStatus(text, kind = '') {
  el.status.textContent = text;
  el.status.classList.toggle('error', kind === 'error');
  el.status.classList.toggle('warn', kind === 'warn');
}

function fmtTime(ms) {
  if (ms == null || !Number.isFinite(ms)) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

function fmtSpan(ms) {
  return ms >= 120000 ? `${Math.round(ms / 60000)} min` : `${Math.round(ms / 1000)} s`;
}

function fmtClock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

/** A signed POST of `body` (JSON) to the operation `op` of this origin: its JSON answer. */
async function api(op, body) {
  return (await apiFetch(op, body)).json();
}

/** A signed POST of `body` (JSON) to the operation `op` of this origin: the 2xx Response. */
async function apiFetch(op, body) {
  if (!state.client) throw new ApiError(0, 'NotSignedIn', 'sign in first');
  const res = await state.client.fetch(new URL(`/${op}`, location.origin), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    let code = res.headers.get('x-amzn-ErrorType')?.split(':')[0] || '';
    let message = '';
    try {
      const err = await res.json();
      code = err.__type || err.code || code;
      message = err.message || err.Message || '';
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  return res;
}

// ------------------------------------------------------------------------------ sign-in
function storedCredentials() {
  try {
    const c = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    return c && c.accessKeyId && c.secretAccessKey ? c : null;
  } catch {
    return null;
  }
}

async function signIn(creds, { remember }) {
  if (!window.isSecureContext || !globalThis.crypto?.subtle) {
    throw new Error('Signing needs a secure context: open this page over HTTPS (or on localhost).');
  }
  state.client = new AwsClient({
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    region: creds.region,
    service: 'kinesisvideo',
    retries: 0, // aws4fetch retries 5xx ten times by default: errors here are final
  });
  try {
    await loadStreams();
  } catch (err) {
    state.client = null;
    throw err;
  }
  if (remember) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(creds));
  el.whoami.textContent = `${creds.accessKeyId} · ${creds.region}`;
  el.login.hidden = true;
  el.app.hidden = false;
  el.account.hidden = false;
  el.streamsNav.hidden = false;
}

function signOut() {
  sessionStorage.removeItem(STORAGE_KEY);
  stopPlayback();
  state.client = null;
  state.stream = null;
  state.streams = [];
  el.streamList.replaceChildren();
  el.app.hidden = true;
  el.account.hidden = true;
  el.login.hidden = false;
  el.secretKey.value = '';
  history.replaceState(null, '', location.pathname);
  setStatus('Signed out.');
}

// ------------------------------------------------------------------------------ streams
async function loadStreams() {
  const streams = [];
  let token;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const out = await api('listStreams', token ? { MaxResults: 100, NextToken: token } : { MaxResults: 100 });
    streams.push(...(out.StreamInfoList || []));
    token = out.NextToken;
    if (!token) break;
  }
  streams.sort((a, b) => a.StreamName.localeCompare(b.StreamName));
  state.streams = streams;
  renderStreams();
  setStatus(streams.length ? `${streams.length} stream(s).` : 'No streams yet.');
}

function renderStreams() {
  const items = state.streams.map((s) => {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.stream = s.StreamName;
    button.textContent = s.StreamName;
    const info = document.createElement('span');
    info.className = 'muted';
    info.textContent = `${s.Status || ''}${s.DataRetentionInHours ? ` · kept ${s.DataRetentionInHours} h` : ''}`;
    button.append(info);
    if (state.stream?.StreamName === s.StreamName) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => selectStream(s.StreamName));
    li.append(button);
    return li;
  });
  el.streamList.replaceChildren(...items);
}

async function selectStream(name) {
  const info = state.streams.find((s) => s.StreamName === name);
  if (!info) {
    setStatus(`No stream named ${name}.`, 'error');
    return;
  }
  state.stream = info;
  renderStreams();
  const url = new URL(location.href);
  url.searchParams.set('stream', name);
  history.replaceState(null, '', url);
  el.playerTitle.textContent = name;
  resetTimeline();
  el.timelineBox.hidden = false;
  refreshFragments().catch((err) => setStatus(`ListFragments: ${err.message}`, 'error'));
  clearInterval(state.timelineTimer);
  state.timelineTimer = setInterval(() => {
    refreshFragments().catch((err) => setStatus(`ListFragments: ${err.message}`, 'error'));
  }, TIMELINE_REFRESH_MS);
  await playLive();
}

// ------------------------------------------------------------------------------ playback
function sessionRequest(selector) {
  return {
    StreamName: state.stream.StreamName,
    ContainerFormat: 'FRAGMENTED_MP4',
    DisplayFragmentTimestamp: 'ALWAYS',
    // DiscontinuityMode: AWS's default (ALWAYS with server timestamps, NEVER with producer
    // timestamps), as any AWS client gets it.
    Expires: SESSION_EXPIRES_S,
    ...selector,
  };
}

/** The session URL on this page's origin: the server serves the same routes on both listeners. */
function sameOrigin(url) {
  const u = new URL(url, location.href);
  return new URL(u.pathname + u.search, location.origin).toString();
}

async function playLive() {
  const gen = ++state.generation;
  setStatus(`Starting live playback of ${state.stream.StreamName}…`);
  try {
    const out = await api('getHLSStreamingSessionURL', sessionRequest({ PlaybackMode: 'LIVE' }));
    if (gen !== state.generation) return;
    play(sameOrigin(out.HLSStreamingSessionURL), 'LIVE', gen);
  } catch (err) {
    if (gen !== state.generation) return;
    reportSessionError(err);
  }
}

async function playFrom(startMs) {
  if (!state.stream) return;
  const gen = ++state.generation;
  setStatus(`Playing ${state.stream.StreamName} from ${fmtTime(startMs)}…`);
  const range = { StartTimestamp: startMs / 1000 };
  const selector = { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range };
  try {
    let out;
    try {
      // From that time on, into live.
      out = await api('getHLSStreamingSessionURL', sessionRequest({ PlaybackMode: 'LIVE_REPLAY', HLSFragmentSelector: selector }));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 400) throw err;
      // A server without LIVE_REPLAY: the stored range up to now.
      range.EndTimestamp = Date.now() / 1000;
      out = await api('getHLSStreamingSessionURL', sessionRequest({ PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: selector }));
    }
    if (gen !== state.generation) return;
    play(sameOrigin(out.HLSStreamingSessionURL), 'REPLAY', gen);
  } catch (err) {
    if (gen !== state.generation) return;
    reportSessionError(err);
  }
}

function reportSessionError(err) {
  if (err instanceof ApiError && err.status === 501) {
    setStatus(`HLS playback is not available on this server yet (${err.message}).`, 'error');
  } else if (err instanceof ApiError && err.code === 'ResourceNotFoundException') {
    setStatus(`Nothing to play: ${err.message}`, 'error');
  } else {
    setStatus(`GetHLSStreamingSessionURL failed: ${err.message}`, 'error');
  }
}

function stopPlayback() {
  state.generation++;
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  el.video.removeAttribute('src');
  el.video.load();
  state.sessionUrl = null;
  state.mode = null;
  state.playingFrag = null;
  clearInterval(state.tickTimer);
  clearInterval(state.timelineTimer);
  el.mode.hidden = true;
  el.goLive.hidden = true;
}

/** Plays an HLS session URL: hls.js over Media Source Extensions, or the browser's own HLS. */
function play(url, mode, gen = ++state.generation) {
  if (state.hls) state.hls.destroy();
  state.hls = null;
  state.sessionUrl = url;
  state.mode = mode;
  state.recoveries = 0;
  state.playingFrag = null;
  state.shownFragment = null;
  el.mode.hidden = false;
  el.mode.textContent = mode === 'LIVE' ? 'LIVE' : mode === 'REPLAY' ? 'REPLAY' : 'SESSION';
  el.mode.classList.toggle('live', mode === 'LIVE');
  el.goLive.hidden = mode !== 'REPLAY';
  const video = el.video;
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({
      lowLatencyMode: params.get('ll') !== '0',
      backBufferLength: 60,
      // A replay starts at the first segment of its playlist, not at the live edge.
      ...(mode === 'REPLAY' ? { startPosition: 0 } : {}),
    });
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      if (gen !== state.generation) return;
      video.play().catch(() => setStatus('Press play to start (the browser blocked autoplay).'));
    });
    hls.on(Hls.Events.FRAG_CHANGED, (_, data) => {
      state.playingFrag = data.frag;
    });
    hls.on(Hls.Events.ERROR, (_, data) => onHlsError(hls, data, gen));
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
    video.play().catch(() => {});
  } else {
    setStatus('This browser cannot play HLS (no Media Source Extensions).', 'error');
    return;
  }
  clearInterval(state.tickTimer);
  state.tickTimer = setInterval(tick, 500);
  video.addEventListener('playing', () => {
    if (gen === state.generation) setStatus(`Playing ${mode === 'LIVE' ? 'live' : 'from the archive'}.`);
  }, { once: true });
}

function onHlsError(hls, data, gen) {
  const entry = {
    at: new Date().toISOString(),
    type: data.type,
    details: data.details,
    reason: data.reason || data.error?.message || '',
    status: data.response?.code ?? null,
    url: (data.url || data.frag?.url || '').split('?')[0], // without the session token
  };
  if (!data.fatal) {
    if (window.__hlsWarnings.length < 200) window.__hlsWarnings.push({ ...entry, reason: entry.reason.slice(0, 300) });
    return;
  }
  const Hls = window.Hls;
  window.__hlsErrors.push(entry);
  if (gen !== state.generation || hls !== state.hls) return;
  if (state.recoveries++ < 3) {
    setStatus(`Playback error (${data.details}); recovering…`, 'warn');
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else setTimeout(() => hls === state.hls && hls.startLoad(), 1000);
  } else {
    setStatus(`Playback stopped: ${data.details}${data.response?.code ? ` (HTTP ${data.response.code})` : ''}.`, 'error');
    hls.destroy();
    state.hls = null;
  }
}

/** The wall-clock time (producer timestamp) of the frame being shown, in ms, or null. */
function playingDateMs() {
  if (state.hls) {
    const d = state.hls.playingDate;
    return d ? d.getTime() : null;
  }
  const start = el.video.getStartDate?.();
  const t = start?.getTime();
  return Number.isFinite(t) ? t + el.video.currentTime * 1000 : null;
}

function tick() {
  const at = playingDateMs();
  el.playingAt.textContent = at == null ? '–' : fmtTime(at);
  el.latency.textContent = at == null ? '–' : `${((Date.now() - at) / 1000).toFixed(1)} s`;
  if (at != null && !state.scrubbing && Number(el.timeline.max) > Number(el.timeline.min)) {
    el.timeline.value = String(Math.min(Number(el.timeline.max), Math.max(Number(el.timeline.min), at)));
  }
  if (state.client && state.stream) showFragmentAt(at);
}

// ------------------------------------------------------------------------------ timeline
function resetTimeline() {
  state.fragments = new Map();
  state.sorted = [];
  state.lastListAt = 0;
  el.ranges.replaceChildren();
  el.timelineSpan.textContent = '';
}

async function listFragments(stream, startMs, endMs) {
  const out = [];
  let token;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const body = {
      StreamName: stream,
      MaxResults: 1000,
      FragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: { StartTimestamp: startMs / 1000, EndTimestamp: endMs / 1000 },
      },
    };
    if (token) body.NextToken = token;
    const res = await api('listFragments', body);
    out.push(...(res.Fragments || []));
    token = res.NextToken;
    if (!token) break;
  }
  return out;
}

let refreshing = null;
/** Lists the fragments of the window (first time) or of the last minute (after), merged. */
function refreshFragments() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const stream = state.stream;
    if (!stream) return;
    const now = Date.now();
    const retentionMs = (stream.DataRetentionInHours || 0) * 3600 * 1000;
    const windowMs = retentionMs > 0 ? Math.min(TIMELINE_WINDOW_MS, retentionMs) : TIMELINE_WINDOW_MS;
    state.windowStartMs = now - windowMs;
    const from = state.lastListAt ? Math.max(state.windowStartMs, state.lastListAt - 60000) : state.windowStartMs;
    const listed = await listFragments(stream.StreamName, from, now + 5000);
    if (state.stream !== stream) return;
    state.lastListAt = now;
    for (const f of listed) {
      state.fragments.set(f.FragmentNumber, {
        number: f.FragmentNumber,
        startMs: Math.round(f.ProducerTimestamp * 1000),
        durationMs: f.FragmentLengthInMilliseconds || 0,
      });
    }
    for (const [n, f] of state.fragments) if (f.startMs + f.durationMs < state.windowStartMs) state.fragments.delete(n);
    state.sorted = [...state.fragments.values()].sort((a, b) => a.startMs - b.startMs);
    drawTimeline(now);
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

function drawTimeline(now) {
  // From the oldest stored fragment of the window (at least a minute back) to now.
  const first = state.sorted[0];
  const start = first ? Math.max(state.windowStartMs, Math.min(first.startMs, now - 60000)) : state.windowStartMs;
  const span = now - start;
  const ranges = [];
  for (const f of state.sorted) {
    const end = f.startMs + f.durationMs;
    const last = ranges[ranges.length - 1];
    if (last && f.startMs - last[1] <= GAP_TOLERANCE_MS) last[1] = Math.max(last[1], end);
    else ranges.push([f.startMs, end]);
  }
  el.ranges.replaceChildren(...ranges.map(([a, b]) => {
    const s = document.createElement('span');
    s.style.left = `${(Math.max(0, a - start) / span) * 100}%`;
    s.style.width = `${(Math.max(0, Math.min(b, now) - Math.max(a, start)) / span) * 100}%`;
    s.title = `${fmtClock(a)} – ${fmtClock(b)}`;
    return s;
  }));
  el.timeline.min = String(Math.floor(start / 1000) * 1000);
  el.timeline.max = String(Math.ceil(now / 1000) * 1000);
  if (playingDateMs() == null && !state.scrubbing) el.timeline.value = el.timeline.max;
  el.timelineStart.textContent = fmtClock(start);
  el.timelineEnd.textContent = fmtClock(now);
  const stored = ranges.reduce((n, [a, b]) => n + (b - a), 0);
  el.timelineSpan.textContent = `${state.sorted.length} fragments, ${Math.round(stored / 1000)} s stored over ${fmtSpan(span)}`;
  el.timeline.setAttribute('aria-valuetext', fmtTime(Number(el.timeline.value)));
}

function onTimelineInput() {
  state.scrubbing = true;
  el.timeline.setAttribute('aria-valuetext', fmtTime(Number(el.timeline.value)));
  clearTimeout(state.scrubTimer);
}

function onTimelineChange() {
  clearTimeout(state.scrubTimer);
  // Arrow keys fire a change per press: start one session once they stop.
  state.scrubTimer = setTimeout(() => {
    state.scrubbing = false;
    const t = Number(el.timeline.value);
    // Start at the stored fragment holding t, or the next one after a gap.
    const f = state.sorted.find((x) => x.startMs + x.durationMs > t);
    playFrom(f ? Math.max(t, f.startMs) : t);
  }, 400);
}

// ------------------------------------------------------------------------------ metadata
function fragmentNumberFromUrl(url) {
  try {
    return new URL(url, location.href).searchParams.get('FragmentNumber');
  } catch {
    return null;
  }
}

function fragmentAt(ms) {
  const list = state.sorted;
  let lo = 0;
  let hi = list.length - 1;
  let found = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].startMs <= ms + 1) {
      found = list[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found && ms <= found.startMs + found.durationMs + GAP_TOLERANCE_MS) return found;
  return null;
}

function showFragmentAt(ms) {
  let number = fragmentNumberFromUrl(state.playingFrag?.url || '');
  if (!number && ms != null) {
    number = fragmentAt(ms)?.number || null;
    const newest = state.sorted[state.sorted.length - 1];
    if (!number && (!newest || ms > newest.startMs + newest.durationMs)) refreshFragments().catch(() => {});
  }
  if (!number || number === state.shownFragment) return;
  state.shownFragment = number;
  const stream = state.stream.StreamName;
  let pending = state.metaCache.get(number);
  if (!pending) {
    pending = fragmentTags(stream, number).then(fragmentMetadata);
    pending.catch(() => state.metaCache.delete(number));
    state.metaCache.set(number, pending);
    while (state.metaCache.size > META_CACHE_SIZE) state.metaCache.delete(state.metaCache.keys().next().value);
  }
  pending.then((meta) => {
    if (state.shownFragment === number) renderMetadata(number, meta);
  }, (err) => {
    if (state.shownFragment === number) {
      state.shownFragment = null; // try again at the next tick
      el.fragNumber.textContent = `${number} (tags unavailable: ${err.message})`;
    }
  });
}

/**
 * The tags of one fragment: GetMediaForFragmentList, read only up to the start of its Cluster
 * (the fragment's tags come first), then the download is cancelled.
 */
async function fragmentTags(stream, number) {
  const res = await apiFetch('getMediaForFragmentList', { StreamName: stream, Fragments: [number] });
  const reader = res.body.getReader();
  let buf = new Uint8Array(0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (value) {
        const grown = new Uint8Array(buf.length + value.length);
        grown.set(buf);
        grown.set(value, buf.length);
        buf = grown;
      }
      const scan = scanTags(buf, { stopAtCluster: true });
      if (scan.clusterReached || done) return scan.tags;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function renderMetadata(number, meta) {
  el.fragNumber.textContent = meta.fragmentNumber || number;
  el.fragProducer.textContent = fmtTime(meta.producerTimestamp);
  el.fragServer.textContent = fmtTime(meta.serverTimestamp);
  const rows = meta.user.map(({ name, value }) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    const td = document.createElement('td');
    td.textContent = value;
    tr.append(th, td);
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 2;
    td.textContent = 'No user tags in this fragment.';
    tr.append(td);
    rows.push(tr);
  }
  el.tagRows.replaceChildren(...rows);
}

// ------------------------------------------------------------------------------ start-up
async function loadConfig() {
  try {
    const res = await fetch('/web/config.json', { cache: 'no-cache' });
    if (res.ok) return await res.json();
  } catch {
    /* offline or an older server: keep the default */
  }
  return { region: 'us-west-2' };
}

async function main() {
  const config = await loadConfig();
  el.region.value = config.region || 'us-west-2';

  el.loginForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const creds = {
      accessKeyId: el.accessKey.value.trim(),
      secretAccessKey: el.secretKey.value.trim(),
      region: el.region.value.trim() || config.region,
    };
    setStatus('Signing in…');
    try {
      await signIn(creds, { remember: true });
      el.secretKey.value = '';
      if (params.get('stream')) await selectStream(params.get('stream'));
    } catch (err) {
      setStatus(err instanceof ApiError && err.status === 403
        ? `The server refused these keys (${err.message}).`
        : `Sign-in failed: ${err.message}`, 'error');
    }
  });
  el.sessionForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const url = new FormData(el.sessionForm).get('url');
    el.login.hidden = true;
    el.app.hidden = false;
    el.streamsNav.hidden = true;
    el.timelineBox.hidden = true;
    el.playerTitle.textContent = 'Streaming session';
    play(sameOrigin(String(url)), 'URL');
  });
  el.logout.addEventListener('click', signOut);
  el.refreshStreams.addEventListener('click', () => loadStreams().catch((err) => setStatus(`ListStreams: ${err.message}`, 'error')));
  el.goLive.addEventListener('click', () => state.stream && playLive());
  el.timeline.addEventListener('input', onTimelineInput);
  el.timeline.addEventListener('change', onTimelineChange);

  const creds = storedCredentials();
  if (creds) {
    setStatus('Signing in…');
    try {
      await signIn(creds, { remember: false });
      if (params.get('stream')) await selectStream(params.get('stream'));
      return;
    } catch (err) {
      sessionStorage.removeItem(STORAGE_KEY);
      setStatus(`Stored keys no longer work: ${err.message}`, 'error');
    }
  }
  el.login.hidden = false;
  el.accessKey.focus();
}

/** For tests and benchmarks (no keys here). */
window.__player = {
  get hls() { return state.hls; },
  get mode() { return state.mode; },
  get stream() { return state.stream?.StreamName ?? null; },
  get video() { return el.video; },
  playingDateMs,
  /** True when the last loaded media playlist had LL-HLS parts (EXT-X-PART). */
  get lowLatencyPlaylist() {
    const details = state.hls?.levels?.[state.hls.currentLevel >= 0 ? state.hls.currentLevel : 0]?.details;
    return details ? Boolean(details.partList?.length || details.partTarget) : null;
  },
  get lowLatencyMode() { return state.hls?.config.lowLatencyMode ?? null; },
  get shownFragment() { return state.shownFragment; },
};

main().catch((err) => setStatus(`The page failed to start: ${err.message}`, 'error'));
