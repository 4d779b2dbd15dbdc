// Shared by the playground and the dashboard: settings in browser storage, the API key,
// requests to the server, the SSE reader, the theme switch and the notice line.
"use strict";
(function () {
  const SETTINGS_KEY = "hearth.settings.v1";

  function loadSettings() {
    try { return JSON.parse(localStorage.getItem(SETTINGS_KEY)) || {}; } catch (_) { return {}; }
  }
  function saveSettings(settings) {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  }

  /** fetch with the API key (when one is set) as a bearer token. */
  function api(path, options) {
    const opts = Object.assign({}, options || {});
    const headers = new Headers(opts.headers || {});
    const key = loadSettings().apiKey;
    if (key) headers.set("Authorization", "Bearer " + key);
    opts.headers = headers;
    return fetch(path, opts);
  }

  /** The error message of a failed answer (OpenAI's error object, else the status). */
  async function errorMessage(response) {
    const text = await response.text().catch(() => "");
    try {
      const body = JSON.parse(text);
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not JSON */ }
    return "HTTP " + response.status + (text ? ": " + text.slice(0, 300) : "");
  }

  /** Calls onEvent(parsedJson) for each `data:` event of an SSE body until `[DONE]`. */
  async function readSse(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (!data) continue;
        if (data === "[DONE]") return;
        let event;
        try { event = JSON.parse(data); } catch (_) { continue; }
        onEvent(event);
      }
    }
  }

  function applyTheme(theme) {
    const dark = theme ? theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.dataset.theme = dark ? "dark" : "light";
  }
  function setupThemeButton() {
    applyTheme(loadSettings().theme);
    const button = document.getElementById("theme");
    if (!button) return;
    button.addEventListener("click", () => {
      const settings = loadSettings();
      settings.theme = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      saveSettings(settings);
      applyTheme(settings.theme);
      document.dispatchEvent(new CustomEvent("hearth-theme"));
    });
  }

  function notice(text) {
    const el = document.getElementById("notice");
    if (!el) return;
    el.textContent = text || "";
    el.classList.toggle("hidden", !text);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  window.hearth = { loadSettings, saveSettings, api, errorMessage, readSse, setupThemeButton, notice, el };
  applyTheme(loadSettings().theme);
})();
