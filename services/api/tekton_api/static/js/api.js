// the API: JSON requests, Server-Sent Events read from a fetch, and signing in. A browser
// signs in once (a token typed, or brought by a link as ?token=…) and keeps an HTTP-only session
// cookie, so a shared link opens signed in; every request says it comes from this page
// (the API refuses a change by cookie without it: another site cannot send it).
import {$, el} from "./dom.js";

const FROM_HERE = {"X-Tekton-Dashboard": "1"};

export async function api(path, options = {}) {
  const reply = await fetch(path, {...options, headers: {...FROM_HERE, ...(options.headers || {})}});
  const body = (reply.headers.get("content-type") || "").includes("json") ? await reply.json() : await reply.text();
  if (reply.status === 401) askToSignIn();
  if (!reply.ok) throw new Error(body.detail || body || reply.statusText);
  return body;
}

const sendJson = (method) => (path, body) => api(path, {method, body: JSON.stringify(body), headers: {"Content-Type": "application/json"}});
export const post = sendJson("POST");
export const put = sendJson("PUT");

// each event of a Server-Sent Events stream, parsed, until it ends (`onOpen` once it is
// open); a reply that is not a stream is an Error with the API's detail
export async function readEvents(path, signal, onEvent, onOpen = () => {}) {
  const reply = await fetch(path, {headers: FROM_HERE, signal});
  if (!reply.ok) {
    if (reply.status === 401) askToSignIn();
    throw new Error((await reply.json().catch(() => ({}))).detail || reply.statusText);
  }
  onOpen();
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) onEvent(JSON.parse(data));
    }
  }
}

function askToSignIn() {
  $("session").hidden = false;
  $("signed-in").hidden = true;
}

async function signIn(token) {
  await post("/ui/session", {token});
  window.dispatchEvent(new Event("tekton:signed-in"));
}

async function showSession() {
  const now = await api("/ui/session");
  $("session").hidden = !now.required || now.signed_in;
  $("signed-in").hidden = !(now.required && now.signed_in);
  if (now.required && now.signed_in) {
    const out = el("a", {href: "#", id: "sign-out", textContent: "sign out", onclick: async (e) => {
      e.preventDefault();
      await api("/ui/session", {method: "DELETE"});
      location.reload();
    }});
    $("signed-in").replaceChildren(`signed in${now.who ? ` as ${now.who}` : ""} · `, out);
  }
  return now;
}

// before anything else asks: a token an older page kept in local storage becomes the
// session; a token in a link (taken out of the address at once, so a copied link never
// carries it) fills the sign-in box, and signs in only when the person says so: a link
// from anywhere could carry someone else's token
export async function startSession() {
  const given = new URLSearchParams(location.search).get("token");
  if (given) history.replaceState(null, "", location.pathname + location.hash);
  const kept = localStorage.getItem("tekton-token");
  localStorage.removeItem("tekton-token");
  $("session").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("session-error").textContent = "";
    try {
      await signIn($("token").value);
      $("token").value = "";
      await showSession();
    } catch (err) { $("session-error").textContent = err.message; }
  });
  let now = await showSession().catch(() => null);
  if (kept && now && now.required && !now.signed_in) {
    await signIn(kept).catch(() => {});
    now = await showSession().catch(() => null);
  }
  if (given && now && now.required) {
    $("session-label").textContent = now.signed_in ? "This link signs you in with another token:" : "This link signs you in:";
    $("token").value = given;
    $("session").hidden = false;
  }
}
