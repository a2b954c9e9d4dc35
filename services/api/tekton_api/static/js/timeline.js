// the run's timeline: one bar per stage from its start to its end (or now), a mark per turn
// in its seat's lane at its own start and as long as its model took, coloured by its vote;
// and where the tokens went, CI by CI. On a stage's page, that stage alone.
import {$, ROLES, barRows, money, svg, svgText} from "./dom.js";

let chart = null;
let only = null;  // the stage whose page this is

export function resetChart() {
  chart = {t0: null, end: null, over: false, stages: new Map(), turns: []};
  draw();
}

export function showOnly(stage) {
  only = stage;
  draw();
}

export const running = () => chart && chart.t0 && !chart.over;

function chartStage(stage) {
  if (!chart.stages.has(stage)) chart.stages.set(stage, {start: null, end: null, status: "running", tokens: 0, cost: 0});
  return chart.stages.get(stage);
}

export function draw() {
  const box = $("chart");
  if (!chart || !chart.t0) { box.replaceChildren(); $("spend").replaceChildren(); box.setAttribute("viewBox", "0 0 900 20"); return; }
  const LABEL = 110, RIGHT = 200, WIDTH = 900, ROW = 26, LANE = 5, now = Date.now() / 1000;
  const stages = [...chart.stages.entries()].filter(([stage]) => !only || stage === only);
  const ends = stages.map(([, s]) => s.end ?? (chart.over ? s.start : now));
  const t0 = only && stages.length ? stages[0][1].start ?? chart.t0 : chart.t0;
  const last = only ? Math.max(t0 + 0.001, ...ends) : Math.max(chart.end ?? 0, ...ends, chart.t0 + 0.001);
  const span = Math.max(0.001, last - t0);
  const x = (ts) => LABEL + ((ts - t0) / span) * (WIDTH - LABEL - RIGHT);
  const nodes = [];
  stages.forEach(([stage, s], i) => {
    const y = 4 + i * ROW, start = s.start ?? t0, end = s.end ?? (chart.over ? start : now);
    nodes.push(svgText(stage, {x: 0, y: y + 14}), svg("rect", {class: `bar ${s.status}`, "data-stage": stage,
      x: x(start), y, width: Math.max(1, x(end) - x(start)), height: ROW - 4, rx: 3},
      `${stage}: ${s.status}, ${(end - start).toFixed(2)} s, ${s.tokens} tokens`));
    for (const t of chart.turns.filter((turn) => turn.stage === stage)) {
      // a lane per seat: the debaters of a round speak at once
      const lane = Math.max(0, ROLES.indexOf(t.role));
      nodes.push(svg("rect", {class: `tick ${t.vote}`, "data-role": t.role, x: x(t.start), y: y + 2 + lane * LANE,
        width: Math.max(2, x(t.start + t.latency) - x(t.start)), height: LANE - 1, rx: 1},
        `round ${t.round} ${t.role} ${t.ci}${t.model ? ` on ${t.model}` : ""}: ${t.vote}, ${t.latency.toFixed(2)} s`));
    }
    const said = s.end ? `${(end - start).toFixed(2)} s · ${s.tokens} tok · ${money(s.cost)}` : s.status;
    nodes.push(svgText(said, {x: WIDTH - RIGHT + 6, y: y + 14, class: "axis"}));
  });
  const height = 8 + stages.length * ROW + 14;
  nodes.push(svgText(`0 s … ${span.toFixed(2)} s`, {x: LABEL, y: height - 2, class: "axis"}));
  box.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
  box.replaceChildren(...nodes);
  drawSpend();
}

// where the tokens went: one bar per CI, its fresh tokens and, lighter, its cache reads
function drawSpend() {
  const by = new Map();
  for (const t of chart.turns.filter((turn) => !only || turn.stage === only)) {
    const ci = by.get(t.ci) || {fresh: 0, cached: 0, cost: 0, turns: 0};
    ci.fresh += t.fresh; ci.cached += t.cached; ci.cost += t.cost; ci.turns += 1;
    by.set(t.ci, ci);
  }
  const rows = [...by.entries()].sort((a, b) => (b[1].fresh + b[1].cached) - (a[1].fresh + a[1].cached));
  barRows($("spend"), {width: 900, label: 110, right: 250, row: 18}, rows.map(([ci, c]) => ({
    name: ci, data: {"data-ci": ci}, parts: [["fresh", c.fresh], ["cached", c.cached]],
    said: `${c.fresh + c.cached} tok${c.cached ? ` (${c.cached} cached)` : ""} · ${money(c.cost)}`,
    title: `${ci}: ${c.fresh} tokens, ${c.cached} read from the cache, ${money(c.cost)}, ${c.turns} turns`})));
}

export function chartEvent(event, kind) {
  if (kind === "RunStarted") chart.t0 = chart.t0 ?? event.ts;
  if (!chart.t0) chart.t0 = event.ts;
  if (kind === "StageStarted") Object.assign(chartStage(event.stage), {start: event.ts, end: null, status: "running"});
  if (kind === "StageFinished") Object.assign(chartStage(event.stage), {end: event.ts, status: "approved", tokens: event.tokens, cost: event.cost_usd});
  if (kind === "StageBlocked") Object.assign(chartStage(event.stage), {end: event.ts, status: "blocked"});
  if (kind === "StageAwaitingApproval") Object.assign(chartStage(event.stage), {status: "awaiting", tokens: event.tokens});
  if (kind === "DebateTurn") {
    const t = event.turn;
    const vote = (t.position && t.position.vote) || (t.outcome && t.outcome.status) || (t.abstained ? "abstain" : "none");
    chart.turns.push({stage: event.stage, round: t.round, role: t.role, ci: t.ci, model: t.model, vote, start: t.started_at, latency: t.latency_s,
      fresh: (t.input_tokens || 0) + (t.output_tokens || 0) + (t.cache_creation_input_tokens || 0),
      cached: t.cache_read_input_tokens || 0, cost: t.cost_usd || 0});
  }
  if (kind === "RunFinished" || kind === "RunFailed") { chart.end = event.ts; chart.over = true; }
  draw();
}
