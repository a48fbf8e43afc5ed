#include "server/web_ui.h"

namespace ixc::server {

const char* WebUiContentSecurityPolicy() {
  return "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob: https:; "
         "media-src data: blob:; connect-src 'self'; frame-src 'self' blob: data:; base-uri 'none'; form-action 'none'";
}

// Plain DOM code: text is set with textContent (never parsed as HTML); a generated page is shown only in an iframe
// sandboxed without same-origin, so its scripts cannot reach this page or the API key.
const char* WebUiHtml() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ixc chat</title>
<style>
  :root { --fg:#1d2330; --muted:#667085; --line:#d9dee7; --bg:#f6f7f9; --accent:#2f5fd0; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, sans-serif; color:var(--fg); background:var(--bg); display:flex; flex-direction:column; height:100vh; }
  header { display:flex; flex-wrap:wrap; gap:.6rem; align-items:center; padding:.6rem 1rem; border-bottom:1px solid var(--line); background:#fff; }
  header h1 { font-size:1rem; margin:0 .6rem 0 0; }
  header label { font-size:.8rem; color:var(--muted); display:flex; gap:.3rem; align-items:center; }
  header input, header select { font:inherit; font-size:.85rem; padding:.15rem .3rem; border:1px solid var(--line); border-radius:4px; }
  header input[type=number] { width:5.2rem; }
  #log { flex:1; overflow-y:auto; padding:1rem; display:flex; flex-direction:column; gap:.8rem; }
  .msg { max-width:52rem; padding:.6rem .8rem; border-radius:8px; background:#fff; border:1px solid var(--line); white-space:pre-wrap; word-wrap:break-word; }
  .user { align-self:flex-end; background:#e9efff; border-color:#c9d6fb; }
  .msg img, .msg video { max-width:14rem; max-height:10rem; display:block; margin-bottom:.4rem; border-radius:4px; }
  .err { color:#b42318; border-color:#f3b5ae; background:#fff4f2; }
  .meta { font-size:.75rem; color:var(--muted); margin-top:.3rem; }
  iframe.preview { width:100%; height:28rem; border:1px solid var(--line); border-radius:6px; background:#fff; margin-top:.5rem; }
  form { display:flex; gap:.5rem; padding:.7rem 1rem; border-top:1px solid var(--line); background:#fff; align-items:flex-end; }
  textarea { flex:1; font:inherit; min-height:2.6rem; max-height:12rem; resize:vertical; padding:.45rem; border:1px solid var(--line); border-radius:6px; }
  button { font:inherit; padding:.45rem .9rem; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
  button.plain { background:#fff; color:var(--accent); }
  button:disabled { opacity:.5; cursor:default; }
  #attached { display:flex; gap:.4rem; padding:0 1rem; background:#fff; }
  #attached span { font-size:.8rem; background:#eef1f6; border-radius:4px; padding:.1rem .4rem; }
</style>
</head>
<body>
<header>
  <h1 id="title">ixc</h1>
  <label>mode <select id="mode"><option>base</option><option>web</option><option>write</option></select></label>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="1"></label>
  <label>top-p <input id="top_p" type="number" min="0.01" max="1" step="0.05" value="0.8"></label>
  <label>max tokens <input id="max_tokens" type="number" min="1" max="4096" value="512"></label>
  <label>hd_num <input id="hd_num" type="number" min="1" max="100" placeholder="auto"></label>
  <label>API key <input id="key" type="password" placeholder="none" size="10"></label>
  <button class="plain" id="reset" type="button">New chat</button>
</header>
<main id="log" aria-live="polite"></main>
<div id="attached"></div>
<form id="form">
  <input id="file" type="file" accept="image/*,video/*" multiple hidden>
  <button class="plain" id="attach" type="button" title="Add an image or a video">Attach</button>
  <textarea id="input" placeholder="Ask about a picture or a video..." required></textarea>
  <button id="send" type="submit">Send</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let history = [];      // OpenAI messages sent so far
let pending = [];      // attachments for the next message: {type, url, name}
let controller = null; // the running request

$("key").value = localStorage.getItem("ixc-key") || "";
$("key").addEventListener("change", () => localStorage.setItem("ixc-key", $("key").value));

function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}

fetch("/v1/models", {headers: headers()}).then(r => r.json()).then(j => {
  if (j.data && j.data[0]) $("title").textContent = j.data[0].id;
}).catch(() => {});

function bubble(cls) {
  const d = document.createElement("div");
  d.className = "msg " + cls;
  $("log").appendChild(d);
  $("log").scrollTop = $("log").scrollHeight;
  return d;
}

function showAttachments() {
  const a = $("attached");
  a.replaceChildren(...pending.map(p => { const s = document.createElement("span"); s.textContent = p.name; return s; }));
}

$("attach").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", () => {
  for (const f of $("file").files) {
    const reader = new FileReader();
    reader.onload = () => {
      pending.push({type: f.type.startsWith("video/") ? "video_url" : "image_url", url: reader.result, name: f.name});
      showAttachments();
    };
    reader.readAsDataURL(f);
  }
  $("file").value = "";
});

$("reset").addEventListener("click", () => {
  if (controller) controller.abort();
  history = []; pending = [];
  showAttachments();
  $("log").replaceChildren();
});

function preview(container, html) {
  const frame = document.createElement("iframe");
  frame.className = "preview";
  frame.setAttribute("sandbox", "allow-scripts");  // no same-origin: the page cannot touch this one
  frame.srcdoc = html;
  container.appendChild(frame);
}

$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});

$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  const parts = pending.map(p => ({type: p.type, [p.type]: {url: p.url}}));
  parts.push({type: "text", text});
  const userBubble = bubble("user");
  for (const p of pending) {
    const el = document.createElement(p.type === "video_url" ? "video" : "img");
    el.src = p.url;
    if (p.type === "video_url") el.controls = true;
    userBubble.appendChild(el);
  }
  userBubble.appendChild(document.createTextNode(text));
  const messages = history.concat([{role: "user", content: parts}]);
  pending = []; showAttachments();
  $("input").value = "";

  const body = {messages, stream: true, mode: $("mode").value,
                temperature: Number($("temperature").value), top_p: Number($("top_p").value),
                max_tokens: Number($("max_tokens").value)};
  if ($("hd_num").value) body.hd_num = Number($("hd_num").value);
  const out = bubble("assistant");
  const textNode = document.createTextNode("");
  out.appendChild(textNode);
  let reply = "";
  $("send").disabled = true;
  controller = new AbortController();
  try {
    const res = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal});
    if (!res.ok) {
      const j = await res.json().catch(() => ({}));
      throw new Error((j.error && j.error.message) || ("HTTP " + res.status));
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "", usage = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += decoder.decode(value, {stream: true});
      let at;
      while ((at = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, at); buf = buf.slice(at + 2);
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        const delta = j.choices && j.choices[0] && j.choices[0].delta;
        if (delta && delta.content) { reply += delta.content; textNode.data = reply; $("log").scrollTop = $("log").scrollHeight; }
        if (j.usage) usage = j.usage;
      }
    }
    history = messages.concat([{role: "assistant", content: reply}]);
    if (usage) {
      const m = document.createElement("div");
      m.className = "meta";
      m.textContent = usage.prompt_tokens + " prompt tokens, " + usage.completion_tokens + " generated";
      out.appendChild(m);
    }
    if (body.mode === "web" && /<html|<body|<div/i.test(reply)) preview(out, reply);
  } catch (err) {
    if (err.name !== "AbortError") { out.classList.add("err"); textNode.data = reply + (reply ? "\n" : "") + err.message; }
  } finally {
    controller = null;
    $("send").disabled = false;
  }
});
</script>
</body>
</html>
)HTML";
}

}  // namespace ixc::server
