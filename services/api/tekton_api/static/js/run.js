// one run, live: its events read from the API as they happen, drawn as a timeline, a box
// per stage with its turns, debate, checks and artifacts, and the forms a person answers
// a seat or decides a gate with. A stage's address shows that stage alone.
import {post, readEvents} from "./api.js";
import {$, STAGES, el, link} from "./dom.js";
import {debateEvent, resetDebates} from "./debate.js";
import {refreshRuns} from "./runs.js";
import {chartEvent, resetChart, showOnly} from "./timeline.js";
import {checkLine, clearArtifact, openArtifact, showChange} from "./work.js";

let following = null;  // {runId, abort}
let wanted = null;  // the stage an address names
const made = new Map();  // stage → the name of its artifact

export const followed = () => following && following.runId;

// an address that is not a run's: no run followed, nothing focused
export function leave() {
  if (following) following.abort.abort();
  following = null;
  wanted = null;
  document.body.removeAttribute("data-stage");
  showOnly(null);
  $("stage-nav").hidden = true;
  $("run-title").textContent = "No run selected";
  $("run-status").textContent = "";
  resetChart();
  $("timeline").replaceChildren();
  $("change").replaceChildren();
  clearArtifact();
}

// what the address names in the run: a stage (its page) or an artifact
export function focus(kind, name) {
  wanted = kind === "stages" ? name : null;
  document.body.toggleAttribute("data-stage", Boolean(wanted));
  if (wanted) document.body.dataset.stage = wanted;
  showOnly(wanted);
  const nav = $("stage-nav");
  nav.hidden = !wanted;
  const known = !wanted || STAGES.includes(wanted);
  nav.replaceChildren(...(wanted ? [known ? `stage ${wanted} · ` : `no stage ${wanted} in the pipeline · `,
    link(`/ui/runs/${following.runId}`, "the whole run")] : []));
  markWanted();
  if (kind === "artifacts") openArtifact(following.runId, name).catch((e) => { $("artifact-view").textContent = e.message; });
  else if (wanted && made.has(wanted)) openArtifact(following.runId, made.get(wanted)).catch(() => {});
  else if (wanted) clearArtifact();
}

function markWanted() {
  for (const box of document.querySelectorAll(".stage")) {
    const on = box.dataset.stage === wanted;
    if (on && !box.hasAttribute("data-wanted")) box.scrollIntoView({block: "nearest"});
    box.toggleAttribute("data-wanted", on);  // an attribute: a stage's state is its class
  }
}

function stageBox(stage) {
  let box = document.querySelector(`.stage[data-stage="${stage}"]`);
  if (!box) {
    box = el("div", {className: "stage running"}, el("strong", {}, link(`/ui/runs/${following.runId}/stages/${encodeURIComponent(stage)}`, stage)),
      el("span", {className: "muted state", textContent: " running"}));
    box.dataset.stage = stage;
    $("timeline").append(box);
    markWanted();
  }
  return box;
}

// a form asking a person: what they are asked (if said), a JSON answer, who gives it, and
// buttons that send it
function askForm(title, json, send, buttons, asked = null) {
  const text = el("textarea", {rows: 8, className: "answer", value: JSON.stringify(json, null, 2)});
  const by = el("input", {type: "text", className: "by", placeholder: "your name (a named token says it for you)", value: localStorage.getItem("tekton-by") || ""});
  const note = el("input", {type: "text", className: "note", placeholder: "comment (a rejection's reason)"});
  const said = el("div", {className: "error said"});
  const question = asked ? [el("details", {className: "asked"}, el("summary", {textContent: "what the seat is asked"}),
    el("pre", {textContent: asked}))] : [];
  const form = el("div", {className: "ask"}, el("strong", {textContent: title}), ...question, text,
    el("label", {textContent: "by"}), by, el("label", {textContent: "comment"}), note, said);
  for (const [label, action] of buttons) {
    form.append(el("button", {type: "button", className: `do-${action}`, textContent: label, onclick: async () => {
      said.textContent = "";
      try {
        localStorage.setItem("tekton-by", by.value);
        const answer = JSON.parse(text.value);
        await send(action, answer, by.value, note.value);
        form.replaceChildren(el("span", {className: "muted done", textContent: `${label}: sent by ${by.value}`}));
      } catch (err) { said.textContent = err.message; }
    }}), " ");
  }
  return form;
}

// what a debater's position and a mediator's outcome look like, for a person to edit
const POSITION = {position: "", scores: {correctness: 0.8, stack_fit: 0.8, ops_risk: 0.2, reversibility: 0.8, recency: 0.5},
  risks: [], checks: [], self_confidence: 0.8, vote: "accept"};
const OUTCOME = {artifact: {}, status: "approved", rationale: "", dissent: [], risks: [], checklist: [], confidence: 0.8};

function show(event) {
  const kind = event.type.replace(".v1", "");
  chartEvent(event, kind);
  debateEvent(event, kind, stageBox);
  if (kind === "RunStarted") $("run-status").textContent = `stages: ${event.stages.join(" → ")}`;
  if (kind === "StageStarted") stageBox(event.stage).dataset.debate = event.debate_id;
  if (kind === "StageProgress" && event.step === "awaiting answer") {  // its turn, when it comes, takes the form away
    const box = stageBox(event.stage);
    const debate = box.dataset.debate;
    const form = askForm(`the ${event.role} seat waits for your answer`, event.role === "mediator" ? OUTCOME : POSITION,
      (_action, answer, by) => post(`/debates/${debate}/answers`, {role: event.role, answer, by: by || null}),
      [["Answer", "answer"]], event.ask);
    form.dataset.role = event.role;
    box.append(form);
  }
  if (kind === "StageAwaitingApproval") {
    const box = stageBox(event.stage);
    box.className = "stage awaiting";
    box.querySelector(".state").textContent = ` awaits a decision (confidence ${event.confidence.toFixed(2)})`;
    box.append(askForm("approve, reject, or edit the artifact and send it on", event.artifact,
      (decision, artifact, by, comment) => post(`/runs/${event.run_id}/decisions`, {decision, by: by || null, stage: event.stage,
        comment: comment || null, artifact: decision === "edit" ? artifact : null}),
      [["Approve", "approve"], ["Reject", "reject"], ["Send edited", "edit"]]));
  }
  if (kind === "DecisionRecorded") {
    for (const form of stageBox(event.stage).querySelectorAll(".ask")) form.remove();
    stageBox(event.stage).append(el("div", {className: "turn decided", textContent: `${event.decision} by ${event.by}${event.comment ? `: ${event.comment}` : ""}`}));
  }
  if (kind === "StageProgress") stageBox(event.stage).append(el("div", {className: "turn muted",
    textContent: `${event.step}${event.accept_share !== undefined ? ` (accept share ${event.accept_share.toFixed(2)})` : ""}${event.detail ? `: ${event.detail}` : ""}`}));
  if (kind === "DebateTurn") {
    const t = event.turn;
    for (const form of stageBox(event.stage).querySelectorAll(`.ask[data-role="${t.role}"]`)) form.remove();
    const vote = (t.position && t.position.vote) || (t.outcome && t.outcome.status) || (t.abstained ? "abstain" : "-");
    const confidence = t.position ? ` confidence ${t.position.self_confidence.toFixed(2)}` : (t.outcome && t.outcome.confidence !== undefined ? ` confidence ${Number(t.outcome.confidence).toFixed(2)}` : "");
    stageBox(event.stage).append(el("div", {className: "turn"}, `round ${t.round} ${t.role} ${t.ci}: `,
      el("span", {className: `vote-${vote}`, textContent: vote}), confidence));
  }
  if (kind === "ArtifactCreated") {
    made.set(event.stage, event.name);
    stageBox(event.stage).append(el("div", {className: "turn"}, "artifact ",
      link(`/ui/runs/${event.run_id}/artifacts/${encodeURIComponent(event.name)}`, event.name)));
    if (event.stage === wanted) openArtifact(event.run_id, event.name).catch(() => {});
  }
  if (kind === "StageFinished" || kind === "StageBlocked") {
    const box = stageBox(event.stage);
    const status = kind === "StageFinished" ? "approved" : "blocked";
    box.className = `stage ${status}`;
    box.querySelector(".state").textContent = status === "approved"
      ? ` approved in ${event.duration_s.toFixed(2)}s, ${event.tokens} tokens, confidence ${event.confidence.toFixed(2)}`
      : ` blocked: ${event.reason}`;
  }
  if (kind === "ChecksFinished") {
    const box = stageBox(event.stage);
    box.append(el("div", {className: "turn"}, `checks of attempt ${event.attempt} (${event.source}) on ${event.commit.slice(0, 10)}`));
    for (const [where, results] of [["base", event.base || []], ["change", event.results]]) {
      for (const r of results) box.append(checkLine(where, r));
    }
  }
  if (kind === "RepairRequested") stageBox(event.stage).append(el("div", {className: "turn vote-revise",
    textContent: `again, attempt ${event.attempt}: ${event.reason.split("\n")[0]}`}));
  if (kind === "RunFinished" || kind === "RunFailed") {
    for (const form of document.querySelectorAll(".ask")) form.remove();  // nothing waits any more
    $("run-status").textContent = kind === "RunFinished"
      ? `finished in ${event.duration_s.toFixed(2)}s (${event.tokens} tokens)${event.branch ? `; branch ${event.branch}` : ""}` : `failed: ${event.reason}`;
    $("run-status").dataset.state = kind === "RunFinished" ? "finished" : "failed";
    refreshRuns().catch(() => {});
    showChange(event.run_id).catch(() => {});
  }
}

// a hidden tab lets the run's stream go, and reads it again from the start when shown
export function pause() {
  if (!following || !following.open) return;
  following.paused = true;
  following.abort.abort();
}

export function resume() {
  if (following && following.paused) {
    watch(following.runId);  // main.js routes again: the stage or artifact focused again
  }
}

// follow a run from its first event (a run followed already goes on being followed)
export async function watch(runId) {
  if (following) following.abort.abort();
  const mine = following = {runId, abort: new AbortController(), open: true, paused: false};
  made.clear();
  resetChart();
  resetDebates();
  $("run-title").textContent = `Run ${runId}`;
  $("run-status").textContent = "";
  delete $("run-status").dataset.state;
  $("timeline").replaceChildren();
  $("change").replaceChildren();
  clearArtifact();
  try {
    await readEvents(`/runs/${encodeURIComponent(runId)}/events`, mine.abort.signal, show);
  } catch (err) {
    if (err.name === "AbortError") return;
    $("run-status").textContent = `run ${runId}: ${err.message}`;
    $("run-status").dataset.state = "unknown";
  } finally {
    mine.open = mine.paused;  // ended by itself (the run is over): nothing to read again
  }
}

