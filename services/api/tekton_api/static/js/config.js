// the defaults of runs started here, saved through /config: model, rounds, threshold,
// seats of every stage, and per stage its consensus-free switch and who sits each seat
// (CI, @MODEL, CI@MODEL or human), with what a run started now gets shown beneath
import {api, put} from "./api.js";
import {$, ROLES, el} from "./dom.js";
import {setConfigThreshold} from "./debate.js";

const cell = (stage, role) => $(`seat-${stage}-${role}`);

// a saved seat's CI and model, merged by stage and role as the platform merges them (a
// later one's CI or model over an earlier one's)
function ownSeats(seats) {
  const own = new Map(), general = [];
  for (const seat of seats) {
    const found = seat.match(/^(?:([a-z_]+):)?([a-z]+)=([^@]*)(?:@(.+))?$/);
    if (!found || !found[1]) { general.push(seat); continue; }
    const key = `${found[1]}:${found[2]}`, held = own.get(key) || {ci: "", model: ""};
    if (found[3]) held.ci = found[3];
    if (found[3] === "human") held.model = "";
    else if (found[4]) { held.model = found[4]; if (held.ci === "human") held.ci = ""; }
    own.set(key, held);
  }
  return {general, own};
}

// one row per stage: its switch, and an input per seat with its effective value beneath
function drawStages(config, now) {
  const {general, own} = ownSeats(config.seats);
  $("cfg-seats").value = general.join(", ");
  $("cfg-now").textContent = `A run started now: ${now.model ? `every turn on ${now.model}` : "each seat on its own model"}, `
    + `${now.max_rounds} round${now.max_rounds === 1 ? "" : "s"}, threshold ${now.threshold.toFixed(2)}.`;
  $("cfg-stages").replaceChildren(...now.stages.map((s) => el("tr", {},
    el("td", {textContent: s.stage}),
    el("td", {}, el("input", {type: "checkbox", className: "free", value: s.stage, checked: config.consensus_free.includes(s.stage),
      ariaLabel: `${s.stage} is consensus-free`})),
    ...ROLES.map((role) => {
      const seat = s.seats.find((x) => x.role === role), held = own.get(`${s.stage}:${role}`);
      const said = `${seat.ci}${seat.model ? ` · ${seat.model}` : ""}${seat.sits ? "" : " (no turn)"}`;
      return el("td", {}, el("input", {type: "text", id: `seat-${s.stage}-${role}`,
        value: held ? `${held.ci}${held.model ? `@${held.model}` : ""}` : "", ariaLabel: `${s.stage} ${role}`}),
      el("span", {className: `now${seat.sits ? "" : " idle"}`, textContent: said,
        title: seat.model ? `a run started now: ${seat.ci} on ${seat.model}` : "a person's seat"}));
    }))));
}

export async function loadConfig() {  // on load and after saving: a refresh would overwrite what is being typed
  const [config, now] = await Promise.all([api("/config"), api("/config/effective")]);
  $("cfg-model").value = config.model || "";
  $("cfg-rounds").value = config.max_rounds;
  $("cfg-threshold").value = Number(config.threshold).toFixed(2);
  setConfigThreshold(Number(config.threshold));
  drawStages(config, now);
}

function seatsTyped() {
  const seats = $("cfg-seats").value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const row of $("cfg-stages").children) {
    const stage = row.firstChild.textContent;
    for (const role of ROLES) {
      const value = cell(stage, role).value.trim();
      if (value) seats.push(`${stage}:${role}=${value}`);
    }
  }
  return seats;
}

export function wireConfig() {
  $("config").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {model: $("cfg-model").value || null, max_rounds: Number($("cfg-rounds").value),
      threshold: Number($("cfg-threshold").value), seats: seatsTyped(),
      consensus_free: [...document.querySelectorAll("#cfg-stages input.free:checked")].map((c) => c.value)};
    $("config-state").textContent = "";
    try {
      await put("/config", body);
      await loadConfig();
      $("config-state").textContent = "saved";
    } catch (err) { $("config-state").textContent = err.message; }
  });
}
