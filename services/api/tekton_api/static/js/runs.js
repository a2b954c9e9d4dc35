// the runs: the list (filtered, 15 a page, a cost bar each), what every run cost by CI,
// and the runs awaiting a decision named on every page, kept live by the API's feed of
// every run's events
import {api, readEvents} from "./api.js";
import {$, barRows, el, link, money} from "./dom.js";

const PAGE = 15;
let allRuns = [];
let page = 0;  // 0: the newest runs

// what the feed said last of a run's gate (run id → waits or not): newer than the list,
// which history records a moment later
const feedSays = new Map();

export async function refreshRuns() {
  allRuns = await api("/runs");
  drawWaiting();
  listRuns();
}

function drawWaiting() {
  const waiting = new Set(allRuns.filter((r) => r.status === "awaiting approval").map((r) => r.run_id));
  for (const [runId, waits] of feedSays) {
    if (waits) waiting.add(runId); else waiting.delete(runId);
  }
  $("waiting").replaceChildren(...(waiting.size ? [`${waiting.size} awaiting a decision:`,
    ...[...waiting].map((runId) => link(`/ui/runs/${runId}`, runId))] : []));
}

function listRuns() {
  const text = $("runs-text").value.trim().toLowerCase(), status = $("runs-status").value, day = $("runs-day").value;
  const matching = allRuns.filter((r) => (!status || r.status === status)
    && (!text || r.goal.toLowerCase().includes(text) || r.run_id.includes(text))
    && (!day || new Date(r.started_at * 1000).toISOString().slice(0, 10) === day)).reverse();
  page = Math.max(0, Math.min(page, Math.ceil(matching.length / PAGE) - 1));
  const shown = matching.slice(page * PAGE, (page + 1) * PAGE);
  $("runs-page").textContent = matching.length ? `${page * PAGE + 1}–${page * PAGE + shown.length} of ${matching.length}` : "no runs";
  $("runs-newer").disabled = page === 0;
  $("runs-older").disabled = (page + 1) * PAGE >= matching.length;
  drawRunsSpend(shown);
  $("runs").replaceChildren(...shown.map((r) => el("tr", {},
    el("td", {}, link(`/ui/runs/${r.run_id}`, r.run_id)),
    el("td", {textContent: r.status}), el("td", {textContent: r.done}),
    el("td", {textContent: r.goal.slice(0, 40)}))));
}

// the runs shown, what each cost: a bar per run (cost, or tokens when nothing was paid)
function drawRunsSpend(runs) {
  const paid = runs.some((r) => r.cost_usd > 0);
  barRows($("runs-spend"), {width: 340, label: 100, right: 90, row: 14}, runs.map((r) => ({
    name: r.run_id, data: {"data-run": r.run_id}, parts: [["fresh", (paid ? r.cost_usd : r.tokens) || 0]],
    said: paid ? money(r.cost_usd) : `${r.tokens} tok`,
    title: `${r.run_id}: ${r.tokens} tokens, ${money(r.cost_usd)}, ${r.status}`})));
}

// every run together, CI by CI, from the usage ledger: fresh tokens and, lighter, cache reads
const fresh = (t) => t.input_tokens + t.output_tokens + t.cache_creation_input_tokens;

export async function refreshSpend() {
  const day = $("runs-day").value;
  const usage = await api(`/usage${day ? `?day=${day}` : ""}`);
  const all = fresh(usage.total) + usage.total.cache_read_input_tokens;
  $("all-spend-title").textContent = `${day ? `Runs of ${day}` : "Every run"}, by CI: ${all} tokens, ${money(usage.total.cost_usd)}`;
  const rows = Object.entries(usage.groups).sort((a, b) => (fresh(b[1]) + b[1].cache_read_input_tokens) - (fresh(a[1]) + a[1].cache_read_input_tokens));
  barRows($("all-spend"), {width: 340, label: 100, right: 110, row: 14}, rows.map(([ci, t]) => ({
    name: ci, data: {"data-ci": ci}, parts: [["fresh", fresh(t)], ["cached", t.cache_read_input_tokens]],
    said: `${fresh(t) + t.cache_read_input_tokens} tok · ${money(t.cost_usd)}`,
    title: `${ci}: ${fresh(t)} tokens, ${t.cache_read_input_tokens} read from the cache, ${money(t.cost_usd)}, ${t.calls} calls`})));
}

// every run together, stage by stage, from the run history: tokens (or cost, when any was
// paid), how often it finished and its mean time
export async function refreshStages() {
  const day = $("runs-day").value;
  const stages = await api(`/usage/stages${day ? `?day=${day}` : ""}`);
  const paid = stages.some((s) => s.cost_usd > 0);
  $("all-stages-title").textContent = `${day ? `Runs of ${day}` : "Every run"}, by stage`;
  barRows($("all-stages"), {width: 340, label: 70, right: 130, row: 14}, stages.map((s) => ({
    name: s.stage, data: {"data-stage": s.stage}, parts: [["fresh", paid ? s.cost_usd : s.tokens]],
    said: `${paid ? money(s.cost_usd) : `${s.tokens} tok`} · ${s.finished}× · ${s.mean_s.toFixed(1)} s`,
    title: `${s.stage}: finished ${s.finished} times, ${s.tokens} tokens, ${money(s.cost_usd)}, ${s.mean_s.toFixed(2)} s on average`})));
}

// the API's feed of every run's events: a run that starts or stops waiting for a person
// is named (or no longer) at once; a change to any run's row redraws the list a moment
// later (once for a burst, at most every half second), and once when the feed opens;
// followed again when it ends or fails (main.js asks for the list every 30 s besides)
const GATE_OPENS = new Set(["StageAwaitingApproval.v1"]);
const GATE_CLOSES = new Set(["DecisionRecorded.v1", "StageFinished.v1", "RunResumed.v1", "RunFinished.v1", "RunFailed.v1"]);
let pending = null;

function soon() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    refreshRuns().catch(() => {});
    refreshSpend().catch(() => {});
    refreshStages().catch(() => {});
  }, 500);
}

function fed(event) {
  if (GATE_OPENS.has(event.type)) feedSays.set(event.run_id, true);
  if (GATE_CLOSES.has(event.type)) feedSays.set(event.run_id, false);
  drawWaiting();
  soon();
}

let feed = null;  // the feed followed now: its AbortController (none while the tab is hidden)

export function followRuns() {
  if (feed) return;
  const mine = feed = new AbortController();
  const again = () => {
    if (feed !== mine) return;  // stopped meanwhile
    feed = null;
    setTimeout(followRuns, 3000);
  };
  readEvents("/events", mine.signal, fed, soon).then(again, again);
}

// a hidden tab lets its feed go (a browser opens few connections to one server at a time)
export function stopFollowingRuns() {
  if (feed) feed.abort();
  feed = null;
}

export function wireRuns() {
  const first = () => { page = 0; listRuns(); };
  $("runs-text").addEventListener("input", first);
  $("runs-status").addEventListener("change", first);
  $("runs-day").addEventListener("change", () => { first(); refreshSpend().catch(() => {}); refreshStages().catch(() => {}); });
  $("runs-newer").addEventListener("click", () => { page -= 1; listRuns(); });
  $("runs-older").addEventListener("click", () => { page += 1; listRuns(); });
}
