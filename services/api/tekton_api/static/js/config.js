// the defaults of runs started here, saved through /config: model, rounds, threshold,
// seats of every stage, and per stage its consensus-free switch and who sits each seat
// (CI, @MODEL, CI@MODEL or human), with what a run started now gets shown beneath
import {api, put} from "./api.js";
import {$, ROLES, el} from "./dom.js";
import {setConfigThreshold} from "./debate.js";

const cell = (stage, role) => $(`seat-${stage}-${role}`);

// one row per stage: its switch, and an input per seat with its effective value beneath
function drawStages(config, now) {
  const own = new Map();  // "stage:role" → what this configuration seats there
  const general = [];
  for (const seat of config.seats) {
    const found = seat.match(/^(?:([a-z_]+):)?([a-z]+)=(.*)$/);
    if (found && found[1]) own.set(`${found[1]}:${found[2]}`, found[3]);
    else general.push(seat);
  }
  $("cfg-seats").value = general.join(", ");
  $("cfg-stages").replaceChildren(...now.stages.map((s) => el("tr", {},
    el("td", {textContent: s.stage}),
    el("td", {}, el("input", {type: "checkbox", className: "free", value: s.stage, checked: config.consensus_free.includes(s.stage),
      ariaLabel: `${s.stage} is consensus-free`})),
    ...ROLES.map((role) => {
      const seat = s.seats.find((x) => x.role === role);
      return el("td", {}, el("input", {type: "text", id: `seat-${s.stage}-${role}`, value: own.get(`${s.stage}:${role}`) || "",
        ariaLabel: `${s.stage} ${role}`}),
      el("span", {className: "now", textContent: `${seat.ci}${seat.model ? ` · ${seat.model}` : ""}`,
        title: `a run started now: ${seat.ci} on ${seat.model || "its own model"}`}));
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
