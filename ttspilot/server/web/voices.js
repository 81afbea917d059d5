// Voices: the list from /v1/audio/voices; on zero-shot engines, register (upload or record) and delete.

import { api, apiJson, errorMessage } from "./api.js";

const $ = (id) => document.getElementById(id);
const MAX_RECORD_S = 30; // the server takes 1-30 s

/** Tests read it as window.ttspilot.voices. */
export const state = { list: [], registration: null, recorded: null, recording: null };

function setStatus(text, isError = false) {
  $("voice-status").textContent = text;
  $("voice-status").classList.toggle("error", isError);
}

/** Fill the playground's voice menu and this view's table. */
export async function loadVoices() {
  const { voices, default: fallback } = await apiJson("/v1/audio/voices");
  state.list = voices;
  const select = $("voice");
  const chosen = select.value;
  select.replaceChildren(...voices.map((voice) => {
    const label = `${voice.name || voice.id}${voice.language ? ` (${voice.language})` : ""}`;
    return new Option(voice.id === fallback ? `${label}, default` : label, voice.id);
  }));
  select.value = voices.some((voice) => voice.id === chosen) ? chosen : fallback;
  $("voice-table").tBodies[0].replaceChildren(...voices.map(row));
}

function row(voice) {
  const tr = document.createElement("tr");
  for (const text of [voice.id, voice.name, voice.language, voice.kind]) {
    tr.insertCell().textContent = text ?? "";
  }
  const cell = tr.insertCell();
  if (voice.kind === "registered" && state.registration) {
    const button = document.createElement("button");
    button.textContent = "Delete";
    button.dataset.voice = voice.id;
    button.addEventListener("click", () => remove(voice.id));
    cell.append(button);
  }
  return tr;
}

async function remove(id) {
  const response = await api(`/voices/${encodeURIComponent(id)}`, { method: "DELETE" });
  setStatus(response.ok ? `Voice ${id} deleted.` : await errorMessage(response), !response.ok);
  await loadVoices();
}

async function register(event) {
  event.preventDefault();
  const clip = $("voice-file").files[0] || state.recorded;
  if (!clip) {
    setStatus("Choose a clip or record one first.", true);
    return;
  }
  const id = $("voice-id").value.trim();
  const body = new FormData();
  body.set("id", id);
  body.set("prompt_text", $("voice-transcript").value);
  body.set("prompt_wav", clip, clip.name || "recording.wav");
  setStatus(`Registering ${id}…`);
  const response = await api("/voices", { method: "POST", body });
  if (!response.ok) {
    setStatus(await errorMessage(response), true);
    return;
  }
  setStatus(`Voice ${id} registered: pick it in the playground.`);
  $("voice-form").reset();
  state.recorded = null;
  $("record-status").textContent = "";
  await loadVoices();
}

/** Record from the microphone through Web Audio and keep a 16-bit WAV, which the server can read. */
async function record() {
  if (!navigator.mediaDevices?.getUserMedia) {
    $("record-status").textContent = "Recording needs https or 127.0.0.1/localhost; upload a clip instead.";
    return;
  }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  processor.onaudioprocess = (event) => {
    chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
    const took = chunks.length * 4096 / context.sampleRate;
    $("record-status").textContent = `recording… ${took.toFixed(1)} s`;
    if (took >= MAX_RECORD_S) stopRecording();
  };
  source.connect(processor);
  processor.connect(context.destination); // a processor runs only when connected; it outputs silence
  state.recording = { stream, context, source, processor, chunks };
  $("record").disabled = true;
  $("record-stop").disabled = false;
}

function stopRecording() {
  const recording = state.recording;
  if (!recording) return;
  state.recording = null;
  recording.source.disconnect();
  recording.processor.disconnect();
  recording.stream.getTracks().forEach((track) => track.stop());
  const samples = new Float32Array(recording.chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of recording.chunks) {
    samples.set(chunk, offset);
    offset += chunk.length;
  }
  const rate = recording.context.sampleRate;
  recording.context.close();
  state.recorded = new File([wav(samples, rate)], "recording.wav", { type: "audio/wav" });
  $("record-status").textContent = `recorded ${(samples.length / rate).toFixed(1)} s at ${rate} Hz`;
  $("record").disabled = false;
  $("record-stop").disabled = true;
}

/** Mono 16-bit PCM WAV. */
function wav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, value) => [...value].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  samples.forEach((sample, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, sample)) * 32767, true));
  return view.buffer;
}

/** Show the form where the engine clones voices, and say why not elsewhere. */
export function setUp(info) {
  state.registration = info.capabilities.voice_registration;
  const engine = info.effective_config.engine;
  $("voice-form").hidden = !state.registration;
  $("voices-absent").hidden = state.registration;
  if (!state.registration) {
    $("voices-absent").textContent = `This server runs the ${engine} engine, whose voices are fixed: cloning a `
      + "voice from a recording needs a zero-shot engine (a CosyVoice2 or CosyVoice3 model, started with "
      + "--model_dir). The voices it has are listed below.";
  }
  $("voice-form").addEventListener("submit", register);
  $("record").addEventListener("click", () => record().catch((error) => {
    $("record-status").textContent = `cannot record: ${error.message}`;
  }));
  $("record-stop").addEventListener("click", stopRecording);
}
