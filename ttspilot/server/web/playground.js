// Playground: stream raw PCM from /inference_sft and play it with Web Audio while it arrives.

import { api, apiJson, errorMessage, seconds } from "./api.js";

const $ = (id) => document.getElementById(id);
const FOLLOW_MS = 400; // how often the request's segments are asked for while it streams
const LEAD_S = 0.05; // scheduling margin ahead of the audio clock

let context = null;
let speaking = null; // {controller, sources}

/** What the page knows about the current request; tests read it as window.ttspilot.playground. */
export const state = {
  requestId: null, sampleRate: null, bytes: 0, audioSeconds: 0, segments: 0, segmentsDone: 0,
  done: false, error: null, ttfaHeard: null, server: null, firstStart: null,
  played() { return context && this.firstStart !== null ? Math.max(0, context.currentTime - this.firstStart) : 0; },
};

function audioContext() {
  context = context || new AudioContext();
  return context;
}

function form() {
  return {
    text: $("text").value, voice: $("voice").value, speed: Number($("speed").value),
    rate: $("rate").value, format: $("format").value,
  };
}

function setStatus(text, isError = false) {
  $("play-status").textContent = text;
  $("play-status").classList.toggle("error", isError);
}

function reset() {
  Object.assign(state, {
    requestId: null, sampleRate: null, bytes: 0, audioSeconds: 0, segments: 0, segmentsDone: 0,
    done: false, error: null, ttfaHeard: null, server: null, firstStart: null,
  });
  $("request-timings").hidden = true;
  render();
}

function render() {
  const total = state.segments || 1;
  $("segment-progress").max = total;
  $("segment-progress").value = state.segmentsDone;
  $("segment-text").textContent = state.segments ? `segment ${state.segmentsDone} of ${state.segments} sent` : "";
  $("ttfa-heard").textContent = seconds(state.ttfaHeard);
  $("ttfa-server").textContent = seconds(state.server?.time_to_first_audio_s);
  $("rtf-server").textContent = state.server?.rtf?.toFixed(3) ?? "–";
  $("audio-progress").textContent = state.requestId
    ? `${state.audioSeconds.toFixed(1)} s / ${state.played().toFixed(1)} s` : "–";
  const link = $("request-link");
  link.textContent = state.requestId || "–";
  link.href = state.requestId ? `/performance_info?request_id=${encodeURIComponent(state.requestId)}` : "#";
}

async function lookUp(requestId) {
  const info = await apiJson(`/performance_info?request_id=${encodeURIComponent(requestId)}`);
  return info.request;
}

/** Follow the request's segments on the server until it is over; its final timings end up in state.server. */
async function follow(requestId) {
  while (state.requestId === requestId) {
    const found = await lookUp(requestId).catch(() => null);
    if (found && state.requestId === requestId) {
      state.server = found;
      state.segments = found.segments;
      state.segmentsDone = found.segments_done;
      render();
      if (found.outcome !== "running") return found;
    }
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
  }
  return null;
}

/** Schedule little-endian s16 samples right after what `current` has queued. */
function play(bytes, rate, current) {
  const count = bytes.length >> 1;
  if (!count) return;
  const samples = new Int16Array(bytes.slice(0, count * 2).buffer);
  const buffer = context.createBuffer(1, count, rate);
  const channel = buffer.getChannelData(0);
  for (let i = 0; i < count; i++) channel[i] = samples[i] / 32768;
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  const at = Math.max(current.next, context.currentTime + LEAD_S);
  source.start(at);
  current.sources.push(source);
  current.next = at + buffer.duration;
  state.audioSeconds += buffer.duration;
  if (state.firstStart === null) {
    state.firstStart = at;
    state.ttfaHeard = (performance.now() - current.began) / 1000 + (at - context.currentTime);
  }
}

async function speak() {
  stop();
  reset();
  await audioContext().resume(); // inside the click, so autoplay rules allow it
  const { text, voice, speed, rate } = form();
  const body = new FormData();
  body.set("tts_text", text);
  body.set("format", "stream");
  body.set("speed", String(speed));
  if (voice) body.set("spk_id", voice);
  if (rate) body.set("sample_rate", rate);
  const controller = new AbortController();
  const current = { controller, sources: [], next: 0, began: performance.now() };
  speaking = current;
  $("stop").disabled = false;
  setStatus("Synthesising…");
  try {
    const response = await api("/inference_sft", { method: "POST", body, signal: controller.signal });
    if (!response.ok) throw new Error(await errorMessage(response));
    state.requestId = response.headers.get("X-Request-ID");
    state.sampleRate = Number(response.headers.get("X-Sample-Rate"));
    const warning = response.headers.get("Warning");
    setStatus(warning ? `Playing. Note: ${warning.replace(/^299 - /, "")}` : "Playing while the rest is synthesised…");
    const following = follow(state.requestId);
    const reader = response.body.getReader();
    let carry = new Uint8Array(0);
    const ticker = setInterval(render, 200);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        state.bytes += value.length;
        const joined = new Uint8Array(carry.length + value.length);
        joined.set(carry);
        joined.set(value, carry.length);
        const even = joined.length & ~1;
        play(joined.subarray(0, even), state.sampleRate, current);
        carry = joined.slice(even);
      }
    } finally {
      clearInterval(ticker);
    }
    state.done = true;
    const final = await following;
    if (final) state.server = final;
    setStatus(`Done: ${state.audioSeconds.toFixed(1)} s of audio.`);
  } catch (error) {
    if (error.name === "AbortError") return;
    state.error = error instanceof TypeError ? `The server did not answer (${error.message}).` : error.message;
    state.done = true;
    setStatus(state.error, true);
  } finally {
    if (speaking === current) $("stop").disabled = true;
    render();
  }
}

function stop() {
  if (!speaking) return;
  speaking.controller.abort();
  for (const source of speaking.sources) source.stop();
  speaking = null;
  $("stop").disabled = true;
  setStatus("Stopped.");
}

/** The whole file in the chosen format from /v1/tts, offered as a download. */
async function download() {
  const { text, voice, speed, rate, format } = form();
  const link = $("download-link");
  link.hidden = true;
  setStatus(`Making the ${format} file…`);
  const payload = { text, speaker: voice || null, format, speed, sample_rate: rate ? Number(rate) : null };
  let response;
  try {
    response = await api("/v1/tts", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
    });
  } catch (error) {
    setStatus(`The server did not answer: ${error.message}`, true);
    return;
  }
  if (!response.ok) {
    setStatus(await errorMessage(response), true);
    return;
  }
  const blob = await response.blob();
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
  link.download = `ttspilot-${response.headers.get("X-Request-ID")}.${format}`;
  link.textContent = `Save again (${format}, ${(blob.size / 1024).toFixed(0)} KB)`;
  link.hidden = false;
  setStatus(`${format} file ready: ${Number(response.headers.get("X-Audio-Duration")).toFixed(1)} s of audio, `
    + `RTF ${response.headers.get("X-RTF")}.`);
  link.click();
}

async function showTimings(event) {
  event.preventDefault();
  if (!state.requestId) return;
  const pre = $("request-timings");
  pre.textContent = JSON.stringify(await lookUp(state.requestId), null, 2);
  pre.hidden = false;
}

export function setUp() {
  const count = () => { $("text-count").textContent = `${$("text").value.length} characters`; };
  $("text").addEventListener("input", count);
  count();
  $("speed").addEventListener("input", () => { $("speed-out").textContent = Number($("speed").value).toFixed(2); });
  $("speak").addEventListener("click", speak);
  $("stop").addEventListener("click", stop);
  $("download").addEventListener("click", download);
  $("request-link").addEventListener("click", showTimings);
  render();
}
