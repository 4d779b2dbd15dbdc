// Browser test of the playground and the dashboard in headless Chromium (Debian's, driven by
// playwright-core): a streamed answer, a stopped generation, conversations kept across a
// reload, live dashboard charts; screenshots, page weight and first paint are written out.
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const base = process.env.HEARTH_URL;
const shots = process.env.HEARTH_SHOTS;
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base || !shots) throw new Error("HEARTH_URL and HEARTH_SHOTS must be set");
mkdirSync(shots, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
  console.log("ok: " + message);
}

async function gauge(name) {
  const text = await (await fetch(base + "/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(name + "{") || l.startsWith(name + " "));
  return line ? Number(line.trim().split(/\s+/).pop()) : NaN;
}

async function waitFor(what, condition, timeoutMs = 120000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({
  executablePath: browserPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
const failures = [];
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") failures.push("console: " + m.text()); });
  page.on("pageerror", (e) => failures.push("page error: " + e.message));

  // 1. the playground loads, lists the model, and streams an answer
  await page.goto(base + "/");
  await page.waitForSelector("#model option", { state: "attached" });
  const metrics = await page.evaluate(() => ({
    paint: (performance.getEntriesByType("paint").find((p) => p.name === "first-contentful-paint") || {}).startTime,
    bytes: performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource")).reduce((n, e) => n + (e.transferSize || 0), 0),
  }));
  console.log(`first contentful paint: ${metrics.paint?.toFixed(0)} ms; bytes over the wire for /: ${metrics.bytes}`);
  writeFileSync(join(shots, "page-metrics.json"), JSON.stringify(metrics));
  // a bounded first answer: with the server's default budget a sampled answer from a 135M model
  // can ramble to the context limit, and the follow-up request would then not fit the context
  await page.click("#toggle-settings");
  await page.fill("#max_tokens", "300");
  await page.click("#toggle-settings");
  await page.fill("#prompt", "Write a Python function that returns the sum of two numbers.");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".msg.assistant.streaming");
  let partial = "";
  await waitFor("streamed text", async () => {
    partial = await page.textContent(".msg.assistant .body");
    return partial.length > 0;
  });
  const streamingWhilePartial = await page.$(".msg.assistant.streaming");
  check(partial.length > 0 && streamingWhilePartial !== null, "text appears while the answer is still streaming");
  await page.waitForSelector(".msg.assistant:not(.streaming)", { timeout: 180000 });
  const answer = await page.textContent(".msg.assistant .body");
  const stats = await page.textContent(".msg.assistant .stats");
  check(answer.length > partial.length || answer.length > 0, "the answer finished with text (" + answer.length + " characters)");
  check(/first token/.test(stats) && /tokens/.test(stats), "the answer shows its speed: " + stats);
  check(await page.$(".msg.error") === null, "no error shown");
  await page.screenshot({ path: join(shots, "playground.png"), fullPage: false });

  // 2. a second, long generation is stopped midway; the server's running gauge returns to 0
  await page.click("#toggle-settings");
  await page.fill("#max_tokens", "2000");
  await page.click("#toggle-settings");
  await page.fill("#prompt", "Count from 1 to 1000, one number per line.");
  await page.keyboard.press("Enter");
  await waitFor("the second answer to start", async () => {
    const error = await page.$(".msg.error");
    if (error) throw new Error("the second answer failed: " + (await error.textContent()));
    return (await page.$$eval(".msg.assistant .body", (b) => b[1]?.textContent || "")).length > 0;
  });
  await waitFor("the engine to run it", async () => (await gauge("vllm:num_requests_running")) >= 1, 30000);
  await page.click("#stop-button");
  await page.waitForSelector(".msg.assistant:not(.streaming) >> nth=1");
  const stoppedStats = await page.$$eval(".msg.assistant .stats", (s) => s[1].textContent);
  check(/stopped/.test(stoppedStats), "the stopped answer says so: " + stoppedStats);
  await waitFor("running requests back to 0", async () => (await gauge("vllm:num_requests_running")) === 0, 15000);
  check(true, "the server aborted the stopped request (vllm:num_requests_running is 0)");

  // 3. after a reload the conversation is still listed and opens
  await page.reload();
  await page.waitForSelector("#conversations li");
  const titles = await page.$$eval("#conversations li button.open", (b) => b.map((x) => x.textContent));
  check(titles.some((t) => t.startsWith("Write a Python function")), "the conversation is listed after a reload: " + JSON.stringify(titles));
  check((await page.$$(".msg")).length === 4, "its four messages are back");

  // 4. an imported conversation renders its markdown: a highlighted code block with a copy button
  // (an exported file from elsewhere may lack the optional fields: no system prompt, no dates)
  const imported = { format: "hearth-conversations", version: 1, conversations: [{ id: "imported-1", title: "Imported code",
    messages: [{ role: "user", content: "A prime check?" }, { role: "assistant", content: "Here:\n\n```python\ndef is_prime(n):\n    return n > 1 and all(n % i for i in range(2, n))\n```\n\n**Done**." }] }] };
  const importFile = join(shots, "import.json");
  writeFileSync(importFile, JSON.stringify(imported));
  await page.setInputFiles("#import-file", importFile);
  await page.click("#conversations li[data-id='imported-1'] button.open");
  await page.waitForSelector(".msg.assistant .code pre code .tok-kw");
  check((await page.textContent(".msg.assistant .code code")).startsWith("def is_prime(n):"), "the imported answer shows its code block, highlighted");
  check((await page.textContent(".msg.assistant strong")) === "Done", "markdown emphasis is rendered");
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.click(".msg.assistant .code button[data-copy]");
  await page.waitForSelector(".msg.assistant .code button[data-copy]:text('Copied')");
  check(true, "the copy button copies the code");
  await page.fill("#prompt", "Thanks.");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".msg.assistant:not(.streaming) >> nth=1", { timeout: 180000 });
  check(await page.$(".msg.error") === null, "the imported conversation goes on with a new answer");

  // 5. the dashboard's charts update while a request runs
  const dash = await context.newPage();
  dash.on("pageerror", (e) => failures.push("dashboard error: " + e.message));
  await dash.goto(base + "/dashboard");
  await dash.waitForSelector(".chart[data-points]");
  check((await dash.$$(".chart")).length >= 5, "five charts");
  const running = fetch(base + "/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: await page.inputValue("#model"), max_tokens: 200, stream: false, messages: [{ role: "user", content: "Tell me a long story about a lighthouse." }] }) });
  const generatedRate = async () => {
    const legend = await dash.textContent(".chart[data-chart='Tokens per second'] .legend");
    const m = /generated ([\d.]+)(k?)/.exec(legend || "");
    return m ? Number(m[1]) * (m[2] ? 1000 : 1) : 0;
  };
  const before = Number(await dash.getAttribute("body", "data-updates"));
  await waitFor("generated tokens/s above 0 on the dashboard", async () => (await generatedRate()) > 0, 60000);
  const kvText = await dash.textContent(".chart[data-chart='Requests'] .legend");
  await dash.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });
  const after = Number(await dash.getAttribute("body", "data-updates"));
  check(after > before, `the dashboard refreshed while the request ran (${before} -> ${after} updates; ${kvText})`);
  check(/kernels/.test(await dash.textContent("#facts")), "the dashboard names the kernel path");
  await running;

  // 6. dark theme and a narrow window still render
  await page.click("#theme");
  await page.setViewportSize({ width: 420, height: 800 });
  check(await page.isVisible("#open-sidebar"), "a narrow window gets the conversation-list button");
  await page.screenshot({ path: join(shots, "playground-narrow-dark.png") });
} finally {
  await browser.close();
}
if (failures.length) throw new Error("errors in the pages:\n" + failures.join("\n"));
console.log("browser test passed; screenshots in " + shots);
