// the dashboard: one page, an address for every run, stage and artifact, live from the API
import {api, startSession} from "./api.js";
import {$, STAGES, el, go} from "./dom.js";
import {loadConfig, wireConfig} from "./config.js";
import {focus, followed, leave, pause, resume, watch} from "./run.js";
import {followRuns, refreshRuns, refreshSpend, refreshStages, stopFollowingRuns, wireRuns} from "./runs.js";
import {draw, running} from "./timeline.js";

function fillStages() {
  for (const [select, blank] of [[$("from"), "(first)"], [$("to"), "(last)"]]) {
    select.append(el("option", {value: "", textContent: blank}));
    for (const stage of STAGES) select.append(el("option", {value: stage, textContent: stage}));
  }
  for (const [box, name] of [[$("free"), "free"], [$("gates"), "gate"]]) {
    for (const stage of STAGES) {
      box.append(el("label", {className: "inline"},
        el("input", {type: "checkbox", value: stage, name, onchange: name === "free" ? () => { $("free-own").checked = true; } : null}), ` ${stage}`));
    }
  }
}

// /ui/runs/<id>[/stages/<stage>|/artifacts/<name>]
function route() {
  const found = location.pathname.match(/^\/ui\/runs\/([^/]+)(?:\/(stages|artifacts)\/([^/]+))?\/?$/);
  if (!found) { leave(); return; }
  const [, runId, kind, name] = found.map((part) => part && decodeURIComponent(part));
  if (followed() !== runId) watch(runId);
  focus(kind, name);
}

async function refreshHealth() {
  try {
    const checks = await api("/system/checks");
    $("checks-line").textContent = Object.entries(checks.checks)
      .map(([name, c]) => `${c.ok ? "✓" : "✗"} ${name}`).join("  ");
  } catch (e) { $("checks-line").textContent = `checks failed: ${e.message}`; }
  try {
    const cis = await api("/cis");
    $("cis").replaceChildren(...cis.map((c) => el("tr", {},
      el("td", {textContent: c.ci}), el("td", {textContent: c.healthy ? "healthy" : "down"}),
      el("td", {textContent: `${c.turns ?? 0} turns`}), el("td", {textContent: `${c.tokens ?? 0} tokens`}))));
  } catch (e) { $("cis").replaceChildren(el("tr", {}, el("td", {className: "error", textContent: e.message}))); }
}

function wireLaunch() {
  $("launch").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("launch-error").textContent = "";
    const free = [...document.querySelectorAll("input[name=free]:checked")].map((c) => c.value);
    const own = $("free-own").checked;  // else the configuration's consensus-free stages
    const body = {
      goal: $("goal").value,
      repo_url: $("repo").value || null,
      from_stage: $("from").value || null,
      to_stage: $("to").value || null,
      consensus_free: own ? free : null,
      approve: [...document.querySelectorAll("input[name=gate]:checked")].map((c) => c.value),
      seats: $("seats").value.split(",").map((s) => s.trim()).filter(Boolean),
      model: $("model").value || null,
    };
    try {
      const file = $("upload").files[0];
      if (file) {
        const sent = await api("/runs/workspaces", {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
        body.run_id = sent.run_id;
        body.workspace = sent.workspace;
      }
      const started = await api("/runs", {method: "POST", body: JSON.stringify(body), headers: {"Content-Type": "application/json"}});
      refreshRuns().catch(() => {});
      go(`/ui/runs/${started.run_id}`);
    } catch (err) { $("launch-error").textContent = err.message; }
  });
}

// everything the page shows, asked again (at the start, and once signed in)
function load() {
  route();
  refreshRuns().catch(() => {});
  refreshSpend().catch(() => {});
  refreshStages().catch(() => {});
  refreshHealth();
  loadConfig().catch((e) => { $("config-state").textContent = e.message; });
}

fillStages();
wireLaunch();
wireRuns();
wireConfig();
window.addEventListener("popstate", route);
window.addEventListener("tekton:route", route);
window.addEventListener("tekton:signed-in", () => { if (followed()) watch(followed()); load(); });
await startSession();
load();
followRuns();
// only a tab in sight holds streams: a browser opens six connections to a server at most
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") { stopFollowingRuns(); pause(); return; }
  resume();
  followRuns();
  load();
});
// the checks and the roster stay current while the page is open; the runs list too, should
// the feed have missed something
setInterval(refreshHealth, 10000);
setInterval(() => refreshRuns().catch(() => {}), 30000);
// a running stage's bar grows with the clock
setInterval(() => { if (running()) draw(); }, 500);
