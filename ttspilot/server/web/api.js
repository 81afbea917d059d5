// Calls to this server: the API key (asked once, kept in sessionStorage) and readable errors.

const KEY = "ttspilot.apiKey";
let asking = null; // one prompt shared by every call that met a 401

function askForKey(reason) {
  if (asking) return asking;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  document.getElementById("key-reason").textContent = reason;
  dialog.hidden = false;
  input.focus();
  asking = new Promise((resolve) => {
    dialog.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = "";
      dialog.hidden = true;
      asking = null;
      resolve();
    }, { once: true });
  });
  return asking;
}

/** fetch() with the key; on 401 asks for it and tries again. */
export async function api(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers || {});
    const key = sessionStorage.getItem(KEY);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    await askForKey(key ? "That key was refused: enter this server's API key." : "This server needs its API key.");
  }
}

/** The JSON body of a successful call; throws an Error with a readable message otherwise. */
export async function apiJson(path, options = {}) {
  const response = await api(path, options);
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

/** What went wrong, in words: the server's message, and for a busy server when to try again. */
export async function errorMessage(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = body.message || body.error?.message || message;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 503) {
    const retry = response.headers.get("Retry-After");
    const when = retry ? `in ${retry} s` : "in a moment";
    return `The server is busy; please try again ${when}. (${message})`;
  }
  return message;
}

export function seconds(value, digits = 3) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)} s`;
}
