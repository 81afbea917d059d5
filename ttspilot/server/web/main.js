// The page's entry: views by URL hash, the server line, and each view's set-up.

import { apiJson } from "./api.js";
import * as dashboard from "./dashboard.js";
import * as playground from "./playground.js";
import * as voices from "./voices.js";

const VIEWS = ["playground", "voices", "dashboard"];

window.ttspilot = { playground: playground.state, voices: voices.state, dashboard: dashboard.state, ready: false };

function route() {
  const view = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : VIEWS[0];
  for (const name of VIEWS) document.getElementById(name).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    link.classList.toggle("active", link.dataset.view === view);
  }
  dashboard.shown(view === "dashboard");
}

async function serverLine() {
  const line = document.getElementById("server-line");
  try {
    const health = await (await fetch("/health")).json();
    line.textContent = `${health.engine} · ${health.model} · tier ${health.tier} · ${health.status}`;
  } catch (error) {
    line.textContent = `server unreachable: ${error.message}`;
  }
}

async function start() {
  serverLine();
  playground.setUp();
  dashboard.setUp();
  const info = await apiJson("/performance_info");
  voices.setUp(info);
  await voices.loadVoices();
  window.addEventListener("hashchange", route);
  route();
  window.ttspilot.ready = true;
}

start().catch((error) => {
  document.getElementById("play-status").textContent = `The page could not start: ${error.message}`;
  document.getElementById("play-status").classList.add("error");
});
