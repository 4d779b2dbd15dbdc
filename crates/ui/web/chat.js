// The chat playground: conversations kept in browser storage, streaming answers from
// /v1/chat/completions rendered as markdown, sampling settings, stop, and per-answer speed.
"use strict";
(function () {
  const { el, api, errorMessage, readSse, notice } = window.hearth;
  const STORE_KEY = "hearth.conversations.v1";
  const $ = (id) => document.getElementById(id);
  const state = { conversations: [], currentId: null, abort: null, models: [] };

  // ---- storage ----
  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE_KEY));
      if (saved && Array.isArray(saved.conversations)) {
        state.conversations = saved.conversations.filter(validConversation);
        state.currentId = saved.currentId;
      }
    } catch (_) { /* a corrupt store starts empty */ }
  }
  function save() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify({ conversations: state.conversations, currentId: state.currentId }));
    } catch (e) {
      notice("Could not save the conversations in this browser: " + e.message);
    }
  }
  /** Whether `c` is a conversation; fills in the optional fields an imported one may lack. */
  function validConversation(c) {
    const valid = c && typeof c.id === "string" && Array.isArray(c.messages) &&
      c.messages.every((m) => m && typeof m.role === "string" && typeof m.content === "string");
    if (valid) {
      if (typeof c.title !== "string" || !c.title.trim()) c.title = "Untitled";
      if (typeof c.system !== "string") c.system = "";
      if (typeof c.created !== "number") c.created = Date.now();
      if (typeof c.updated !== "number") c.updated = c.created;
    }
    return valid;
  }
  function current() {
    return state.conversations.find((c) => c.id === state.currentId) || null;
  }
  function newConversation() {
    const conversation = { id: "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8), title: "New chat",
      created: Date.now(), updated: Date.now(), system: hearth.loadSettings().system || "", messages: [] };
    state.conversations.unshift(conversation);
    state.currentId = conversation.id;
    save();
    return conversation;
  }

  // ---- rendering ----
  function renderList() {
    const list = $("conversations");
    list.replaceChildren();
    for (const c of state.conversations) {
      const li = el("li", c.id === state.currentId ? "current" : "");
      li.dataset.id = c.id;
      const open = el("button", "open", c.title || "Untitled");
      open.title = c.title;
      open.addEventListener("click", () => select(c.id));
      const rename = el("button", "small", "\u270e");
      rename.setAttribute("aria-label", "Rename " + c.title);
      rename.addEventListener("click", () => renameConversation(c));
      const remove = el("button", "small", "\u00d7");
      remove.setAttribute("aria-label", "Delete " + c.title);
      remove.addEventListener("click", () => deleteConversation(c));
      li.append(open, rename, remove);
      list.append(li);
    }
  }
  function renderMessages() {
    const box = $("messages");
    box.replaceChildren();
    const c = current();
    if (!c || !c.messages.length) {
      box.append(el("div", "empty", "Ask the model anything. Conversations stay in this browser."));
      return;
    }
    for (const m of c.messages) box.append(messageNode(m));
    box.scrollTop = box.scrollHeight;
  }
  function messageNode(message) {
    const node = el("div", "msg " + message.role + (message.error ? " error" : ""));
    node.append(el("div", "who", message.role === "user" ? "you" : message.model || "assistant"));
    const body = el("div", "body");
    fillBody(body, message);
    node.append(body);
    const stats = el("div", "stats", statsText(message));
    node.append(stats);
    return node;
  }
  function fillBody(body, message) {
    if (message.role === "assistant" && !message.error) body.innerHTML = hearth.renderMarkdown(message.content);
    else body.textContent = message.content;
  }
  function statsText(m) {
    if (!m.stats) return "";
    const parts = [];
    if (m.stats.ttft_ms != null) parts.push("first token " + (m.stats.ttft_ms / 1000).toFixed(2) + " s");
    if (m.stats.tokens != null) parts.push(m.stats.tokens + " tokens");
    if (m.stats.tokens_per_s != null) parts.push(m.stats.tokens_per_s.toFixed(1) + " tokens/s");
    if (m.stats.finish) parts.push(m.stats.finish);
    return parts.join(" \u00b7 ");
  }
  function select(id) {
    if (state.abort) return;
    state.currentId = id;
    save();
    renderList();
    renderMessages();
    $("system").value = (current() && current().system) || "";
    $("sidebar").classList.remove("open");
  }

  // ---- conversation actions ----
  function renameConversation(c) {
    const title = window.prompt("Rename the conversation", c.title);
    if (title && title.trim()) {
      c.title = title.trim().slice(0, 200);
      save();
      renderList();
    }
  }
  function deleteConversation(c) {
    if (state.abort && c.id === state.currentId) return;
    if (!window.confirm("Delete \u201c" + c.title + "\u201d?")) return;
    state.conversations = state.conversations.filter((x) => x.id !== c.id);
    if (state.currentId === c.id) state.currentId = state.conversations.length ? state.conversations[0].id : null;
    save();
    renderList();
    renderMessages();
  }
  function exportAll() {
    const blob = new Blob([JSON.stringify({ format: "hearth-conversations", version: 1, conversations: state.conversations }, null, 2)], { type: "application/json" });
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = "hearth-conversations-" + new Date().toISOString().slice(0, 10) + ".json";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }
  async function importFile(file) {
    try {
      const data = JSON.parse(await file.text());
      const incoming = (Array.isArray(data) ? data : data.conversations || []).filter(validConversation);
      if (!incoming.length) throw new Error("no conversations in the file");
      const known = new Set(state.conversations.map((c) => c.id));
      const added = incoming.filter((c) => !known.has(c.id));
      state.conversations = added.concat(state.conversations);
      save();
      renderList();
      notice(added.length + " conversation(s) imported" + (incoming.length > added.length ? ", " + (incoming.length - added.length) + " already here" : "") + ".");
      setTimeout(() => notice(""), 4000);
    } catch (e) {
      notice("Could not import " + file.name + ": " + e.message);
    }
  }

  // ---- settings ----
  const FIELDS = ["temperature", "top_p", "max_tokens", "seed", "stop", "api-key"];
  function loadSettingsIntoForm() {
    const s = hearth.loadSettings();
    for (const f of FIELDS) {
      const key = f === "api-key" ? "apiKey" : f;
      if (s[key] != null) $(f).value = s[key];
    }
  }
  function storeSettingsFromForm() {
    const s = hearth.loadSettings();
    for (const f of FIELDS) s[f === "api-key" ? "apiKey" : f] = $(f).value;
    s.system = $("system").value;
    s.model = $("model").value;
    hearth.saveSettings(s);
    const c = current();
    if (c) { c.system = $("system").value; save(); }
  }
  function samplingParameters() {
    const params = {};
    for (const name of ["temperature", "top_p"]) {
      const v = $(name).value.trim();
      if (v !== "") params[name] = Number(v);
    }
    for (const name of ["max_tokens", "seed"]) {
      const v = $(name).value.trim();
      if (v !== "") params[name] = parseInt(v, 10);
    }
    const stop = $("stop").value.split("\n").filter((s) => s !== "");
    if (stop.length) params.stop = stop;
    return params;
  }

  async function loadModels() {
    const select = $("model");
    try {
      const response = await api("/v1/models");
      if (response.status === 401) { askForKey(); return; }
      if (!response.ok) throw new Error(await errorMessage(response));
      const list = await response.json();
      state.models = (list.data || []).map((m) => m.id);
      select.replaceChildren(...state.models.map((id) => { const o = el("option", "", id); o.value = id; return o; }));
      const saved = hearth.loadSettings().model;
      if (saved && state.models.includes(saved)) select.value = saved;
      notice("");
    } catch (e) {
      notice("Could not list the models: " + e.message);
    }
  }
  function askForKey() {
    notice("The server wants an API key: enter it under Settings (it stays in this browser).");
    $("settings").classList.remove("hidden");
    $("toggle-settings").setAttribute("aria-expanded", "true");
    $("api-key").focus();
  }

  // ---- sending ----
  function setBusy(busy) {
    $("send").classList.toggle("hidden", busy);
    $("stop-button").classList.toggle("hidden", !busy);
  }
  async function send(text) {
    if (state.abort || !text.trim()) return;
    const c = current() || newConversation();
    storeSettingsFromForm();
    if (!c.messages.length) c.title = text.trim().replace(/\s+/g, " ").slice(0, 60);
    c.messages.push({ role: "user", content: text });
    const model = $("model").value || state.models[0];
    const answer = { role: "assistant", content: "", model, stats: null };
    c.messages.push(answer);
    c.updated = Date.now();
    save();
    renderList();
    renderMessages();
    const node = $("messages").lastElementChild;
    node.classList.add("streaming");
    const history = c.messages.slice(0, -1).filter((m) => !m.error).map((m) => ({ role: m.role, content: m.content }));
    const messages = (c.system.trim() ? [{ role: "system", content: c.system }] : []).concat(history);
    const body = Object.assign({ model, messages, stream: true, stream_options: { include_usage: true } }, samplingParameters());
    state.abort = new AbortController();
    setBusy(true);
    await stream(body, answer, node);
    node.classList.remove("streaming");
    state.abort = null;
    setBusy(false);
    c.updated = Date.now();
    save();
    $("prompt").focus();
  }

  async function stream(body, answer, node) {
    const started = performance.now();
    let firstAt = null, chunks = 0, usage = null, finish = null, pending = false;
    const bodyNode = node.querySelector(".body");
    const paint = () => {
      pending = false;
      fillBody(bodyNode, answer);
      const box = $("messages");
      if (box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
    };
    try {
      const response = await api("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body), signal: state.abort.signal });
      if (response.status === 401) askForKey();
      if (!response.ok) throw new Error(await errorMessage(response));
      await readSse(response, (event) => {
        if (event.error) throw new Error(event.error.message || "the server reported an error");
        if (event.usage) usage = event.usage;
        const choice = (event.choices || [])[0];
        if (!choice) return;
        const delta = (choice.delta && choice.delta.content) || "";
        if (delta) {
          if (firstAt === null) firstAt = performance.now();
          answer.content += delta;
          chunks++;
          if (!pending) { pending = true; requestAnimationFrame(paint); }
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      });
    } catch (e) {
      if (e.name === "AbortError") finish = "stopped";
      else { answer.error = true; answer.content = (answer.content ? answer.content + "\n\n" : "") + "Error: " + e.message; node.classList.add("error"); }
    }
    const ended = performance.now();
    const tokens = usage ? usage.completion_tokens : chunks;
    answer.stats = { ttft_ms: firstAt === null ? null : Math.round(firstAt - started), tokens, finish,
      tokens_per_s: firstAt !== null && ended - firstAt > 1 && tokens > 1 ? (tokens - 1) / ((ended - firstAt) / 1000) : null };
    paint();
    node.querySelector(".stats").textContent = statsText(answer);
  }

  // ---- copy buttons and keys ----
  async function copyCode(button) {
    const code = button.closest(".code").querySelector("code").textContent;
    try {
      await navigator.clipboard.writeText(code);
    } catch (_) {
      const area = el("textarea");
      area.value = code;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  }

  function wire() {
    hearth.setupThemeButton();
    $("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("prompt").value;
      if (!text.trim() || state.abort) return;
      $("prompt").value = "";
      send(text);
    });
    $("prompt").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
    });
    $("stop-button").addEventListener("click", () => state.abort && state.abort.abort());
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && state.abort) state.abort.abort();
      if (e.altKey && e.key.toLowerCase() === "n") { e.preventDefault(); $("new-chat").click(); }
      if (e.altKey && e.key.toLowerCase() === "s") { e.preventDefault(); $("toggle-settings").click(); }
    });
    $("new-chat").addEventListener("click", () => {
      if (state.abort) return;
      const c = current();
      if (!c || c.messages.length) newConversation();
      renderList();
      renderMessages();
      $("system").value = current().system;
      $("prompt").focus();
    });
    $("toggle-settings").addEventListener("click", () => {
      const hidden = $("settings").classList.toggle("hidden");
      $("toggle-settings").setAttribute("aria-expanded", String(!hidden));
    });
    for (const f of FIELDS.concat(["system", "model"])) $(f).addEventListener("change", storeSettingsFromForm);
    $("api-key").addEventListener("change", loadModels);
    $("export").addEventListener("click", exportAll);
    $("import-file").addEventListener("change", (e) => { if (e.target.files[0]) importFile(e.target.files[0]); e.target.value = ""; });
    $("messages").addEventListener("click", (e) => { const b = e.target.closest("button[data-copy]"); if (b) copyCode(b); });
    $("open-sidebar").addEventListener("click", () => $("sidebar").classList.add("open"));
    $("close-sidebar").addEventListener("click", () => $("sidebar").classList.remove("open"));
  }

  function start() {
    load();
    wire();
    loadSettingsIntoForm();
    if (!current() && state.conversations.length) state.currentId = state.conversations[0].id;
    $("system").value = (current() && current().system) || hearth.loadSettings().system || "";
    renderList();
    renderMessages();
    loadModels();
    $("prompt").focus();
  }
  document.addEventListener("DOMContentLoaded", start);
})();
