"""The triad debate: parallel rounds over NATS, early consensus, mediation and repair.

1. Opening: proponent, skeptic and pragmatist answer at once, each with a position.
2. Rounds: each sees the shared transcript and revises, again at once; the debate stops
   early once the confidence-weighted accept share reaches the threshold.
3. Mediator: reconciles into an outcome whose artifact must validate against the
   requested schema; validation errors go back to it, a bounded number of times.
Consensus-free: the proponent alone, then the mediator. Every turn is an event on
``tekton.debates.<id>.events`` the moment it ends.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from tekton_common import metrics, spans
from tekton_common.budget import BudgetGuard
from tekton_common.catalog import CIId
from tekton_common.contract.debates import (
    DEBATERS,
    HUMAN,
    OUTCOME_TOKENS,
    POSITION_TOKENS,
    ROLES,
    DebateRequest,
    DebateResult,
    OutcomeReply,
    PositionReply,
    TurnRecord,
    outcome_schema,
    reply_schema,
)
from tekton_common.contract.events import (
    DebateEvent,
    DebateFinished,
    DebateStarted,
    RepairAsked,
    RoundEnded,
    TurnTaken,
)
from tekton_common.contract.schemas import JsonObject, JsonSchema
from tekton_common.errors import OverBudgetError
from tekton_common.stages import roles_of
from tekton_common.wire import ChatRequest, Turn, add_tokens
from tekton_rhetor import quorum
from tekton_rhetor.calls import Ask, Attempt
from tekton_rhetor.humans import Check, HumanSeats
from tekton_rhetor.validate import ArtifactSchema, loads_object, parse_outcome, parse_position

Publish = Callable[[DebateEvent], Awaitable[None]]
#: what a debater's reply is held to (generated from PositionReply)
POSITION_SCHEMA = reply_schema(PositionReply)
#: what a debate without a mediator's outcome reports (it blocked before one)
_NO_OUTCOME = OutcomeReply(artifact={}, status="blocked", rationale="", confidence=0.0)

_ROLE_BRIEF = {
    "proponent": "Argue for the strongest concrete answer.",
    "skeptic": "Look for what is wrong, missing or risky, and say what would change your vote.",
    "pragmatist": "Weigh cost, operations and reversibility; prefer what ships safely.",
}


DEBATES = metrics.counter("tekton.debates", "Debates held, by stage and outcome", "stage", "status")


class BlockedError(Exception):
    """Ends a debate early with a reason."""


def roles_for(request: DebateRequest) -> dict[str, str]:
    """Role → CI id (or HUMAN, a person's seat): the stage's defaults, overridden per
    request."""
    defaults: dict[str, str] = dict(zip(ROLES, roles_of(request.stage), strict=True))
    defaults.update({str(role): ci for role, ci in request.roles.items()})
    return {
        role: ci if ci == HUMAN else str(CIId.from_str(ci))
        for role, ci in defaults.items()
        if role in ROLES
    }


def position_errors(answer: JsonObject) -> list[str]:
    """What is wrong with a person's position (held to what a CI's is)."""
    position, _, error = parse_position(json.dumps(answer))
    return [] if position is not None else [error or "not a position"]


def votes_of(turns: list[TurnRecord]) -> dict[str, str]:
    """Each seat's vote by its CI, or by ``<ci>:<role>`` where one CI (or two people:
    ``human``) holds two seats of the round."""
    held = collections.Counter(t.ci for t in turns)
    return {
        (t.ci if held[t.ci] == 1 else f"{t.ci}:{t.role}"): (
            t.position.vote if t.position else "abstain"
        )
        for t in turns
    }


class Debate:
    """One debate; `run` returns its result and never raises for a debater's failure."""

    def __init__(
        self,
        request: DebateRequest,
        ask: Ask,
        guard: BudgetGuard,
        turn_timeout: float,
        publish: Publish,
        humans: HumanSeats | None = None,
    ) -> None:
        self.request = request
        self.humans = humans
        self.ask = ask
        self.guard = guard
        self.turn_timeout = request.turn_timeout or turn_timeout
        self.publish = publish
        self.roles = roles_for(request)
        self.schema = ArtifactSchema(request.artifact_schema)
        self.transcript: list[TurnRecord] = []
        #: each debater's own conversation, only ever appended to: its next round's
        #: prompt begins with everything its last one held (and what it answered), so a
        #: provider's prompt cache serves that part again
        self.threads: dict[str, list[Turn]] = {}
        self.repairs = 0
        self.started = time.perf_counter()

    # -- bookkeeping ------------------------------------------------------------------
    def _tokens(self) -> int:
        return sum(t.tokens for t in self.transcript)

    def _check_budget(self) -> None:
        budget = self.request.token_budget
        if budget and self._tokens() >= budget:
            raise BlockedError(f"budget: {self._tokens()} tokens used of {budget}")
        try:
            self.guard.check(self.request.run_id)
        except OverBudgetError as exc:
            raise BlockedError(f"budget: {exc}") from None

    async def _event(self, event: DebateEvent) -> None:
        await self.publish(
            msgspec.structs.replace(
                event,
                debate_id=self.request.debate_id,
                stage=self.request.stage,
                run_id=self.request.run_id,
                ts=time.time(),
            )
        )

    def _model(self, role: str) -> str | None:
        """The model a seat is asked on: its own, else the debate's (else the CI's)."""
        seats = {str(r): m for r, m in self.request.models.items()}
        return seats.get(role) or self.request.model

    # -- prompts --------------------------------------------------------------------------
    def _opening(self) -> str:
        request = self.request
        context = (
            request.context
            if isinstance(request.context, str)
            else msgspec.json.encode(request.context or {}).decode()
        )
        return f"Stage: {request.stage}\nQuestion: {request.prompt}\nContext: {context}"

    @staticmethod
    def _positions(number: int, turns: list[TurnRecord]) -> str:
        lines = [f"Round {number} positions:"]
        for t in turns:
            body = msgspec.to_builtins(t.position) if t.position else {"abstained": t.error}
            lines.append(msgspec.json.encode({"role": t.role, "ci": t.ci, **body}).decode())
        return "\n".join(lines)

    def _brief(self, rounds: list[list[TurnRecord]]) -> str:
        """The question and every round's positions (what the mediator reads)."""
        parts = [self._opening()]
        parts += [self._positions(number, turns) for number, turns in enumerate(rounds, 1)]
        return "\n".join(parts)

    def _thread(self, role: str) -> list[Turn]:
        return self.threads.setdefault(
            role, [Turn("user", self._opening()), Turn("assistant", "Understood.")]
        )

    def _payload(
        self, content: str, history: list[Turn], schema: JsonSchema, hints: dict[str, str | int]
    ) -> ChatRequest:
        # a cache breakpoint after the history: the next request of this seat begins so
        role = str(hints["debate_role"])
        return ChatRequest(
            content=content,
            history=history,
            cache_prefix=len(history),
            json_schema=schema,
            context=hints,
            run_id=self.request.run_id,
            model=self._model(role),
            max_tokens=OUTCOME_TOKENS if role == "mediator" else POSITION_TOKENS,
        )

    # -- turns ----------------------------------------------------------------------------
    async def _call(
        self, role: str, number: int, payload: ChatRequest, question: str, check: Check
    ) -> Attempt:
        """The seat's answer in round `number`: its CI's reply, or its person's (asked
        `question`, the answer held to `check`)."""
        ci = self.roles[role]
        if ci != HUMAN:
            return await self.ask(ci, payload, self.turn_timeout)
        if self.humans is None:
            return Attempt(error="this Rhetor takes no answers for human seats", code=400)
        kind: Literal["position", "outcome"] = "outcome" if role == "mediator" else "position"
        return await self.humans.ask(role, number, question, kind, check, self._event)

    def _outcome(self, outcome: JsonObject) -> tuple[OutcomeReply | None, list[str]]:
        """A mediator's outcome read, and what is wrong with it: its artifact, then its
        fields."""
        reply, errors = parse_outcome(outcome)
        return reply, [
            f"artifact.{e}" for e in self.schema.errors(outcome.get("artifact"))
        ] + errors

    def _outcome_errors(self, outcome: JsonObject) -> list[str]:
        """What is wrong with a mediator's outcome (a person's answer is held to it)."""
        return self._outcome(outcome)[1]

    async def _debater_turn(
        self, role: str, number: int, last: list[TurnRecord] | None
    ) -> TurnRecord:
        ci = self.roles[role]
        content = (
            f"You are the {role} in this debate (round {number}). {_ROLE_BRIEF[role]} "
            "Answer with your position as JSON: position, scores (correctness, "
            "stack_fit, ops_risk, reversibility, recency in [0,1]), risks, checks, "
            "self_confidence in [0,1], vote (accept | revise | reject), dissent."
        )
        if last is not None:  # its own is in its thread already
            others = [t for t in last if t.role != role]
            content = f"{self._positions(number - 1, others)}\n{content}"
        history = list(self._thread(role))
        payload = self._payload(
            content, history, POSITION_SCHEMA, {"debate_role": role, "round": number}
        )
        answered = '{"abstained": true}'
        started, error = time.time(), None
        record = TurnRecord(
            round=number, role=role, ci=ci, attempts=0, latency_s=0.0, started_at=started
        )
        attributes = {
            "tekton.debate.role": role,
            "tekton.debate.round": number,
            "gen_ai.agent.name": ci,
        }
        with spans.span(f"debate_turn {role}", attributes) as turn:
            for _ in (1, 2):  # a failed or unreadable turn is asked once more
                record.attempts += 1
                question = f"{self._opening()}\n{content}"
                attempt = await self._call(role, number, payload, question, position_errors)
                self._add_usage(record, attempt)
                if attempt.reply is None:
                    error = attempt.error
                    if ci == HUMAN:
                        break  # a person is not asked twice
                    continue
                position, repaired, error = parse_position(attempt.reply.content)
                if position is not None:
                    record.position, record.repaired = position, repaired
                    answered = attempt.reply.content
                    break
            record.latency_s = round(time.time() - started, 4)
            if record.position is None:
                record.abstained, record.error = True, error
                spans.fail(turn, f"abstained: {error}")
            else:
                turn.set_attribute("tekton.vote", record.position.vote)
        self.threads[role] = [*history, Turn("user", content), Turn("assistant", answered)]
        await self._event(TurnTaken(turn=record))
        return record

    @staticmethod
    def _add_usage(record: TurnRecord, attempt: Attempt) -> None:
        if attempt.reply is None:
            return
        record.model = attempt.reply.model
        add_tokens(record, attempt.reply.usage)
        record.cost_usd += attempt.reply.cost_usd

    async def _round(
        self, number: int, rounds: list[list[TurnRecord]], roles: tuple[str, ...]
    ) -> list[TurnRecord]:
        self._check_budget()
        last = rounds[-1] if rounds else None
        tasks = [asyncio.create_task(self._debater_turn(r, number, last)) for r in roles]
        try:
            turns = list(await asyncio.gather(*tasks))
        except BaseException:  # one turn failed the debate: the others (a person's wait) end too
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        self.transcript.extend(turns)
        share = quorum.accept_share(turns)
        await self._event(
            RoundEnded(round=number, accept_share=round(share, 4), votes=votes_of(turns))
        )
        return turns

    async def _mediate(self, rounds: list[list[TurnRecord]], share: float) -> OutcomeReply:
        """The mediator's outcome, repaired until its artifact validates (or BlockedError)."""
        ci = self.roles["mediator"]
        schema = outcome_schema(self.schema.json_schema)
        mode = (
            "Consensus-free: there was one proponent pass; weigh evidence (tests, "
            "checks) over rhetoric."
            if self.request.consensus_free
            else f"Reconcile by confidence-weighted quorum: the weighted accept share was "
            f"{share:.2f} against a threshold of {self.request.threshold:.2f}."
        )
        content = (
            f"You are the mediator. {mode} Return the outcome as JSON: artifact (per "
            "its schema), status (approved when the artifact answers the question well "
            "enough to build on; blocked only when it cannot be answered as asked), "
            "rationale, dissent, risks, checklist, confidence in [0,1]."
        )
        brief = self._brief(rounds)
        errors: list[str] = []
        for number in range(self.request.max_repairs + 1):
            self._check_budget()
            wording = (
                content
                if not errors
                else (
                    f"{content}\nYour previous outcome failed validation; fix exactly these "
                    f"problems and return the whole outcome again:\n- " + "\n- ".join(errors[:20])
                )
            )
            payload = self._payload(
                wording,
                [Turn("user", brief), Turn("assistant", "Understood.")],
                schema,
                {"debate_role": "mediator", "repair": number},
            )
            record = TurnRecord(
                round=len(rounds) + 1,
                role="mediator",
                ci=ci,
                attempts=0,
                latency_s=0.0,
                started_at=time.time(),
            )
            attributes = {
                "tekton.debate.role": "mediator",
                "tekton.debate.repair": number,
                "gen_ai.agent.name": ci,
            }
            with spans.span("debate_turn mediator", attributes):
                question = f"{brief}\n{wording}"
                check = self._outcome_errors
                attempt = await self._call("mediator", record.round, payload, question, check)
                record.attempts = 1
                if attempt.reply is None and ci != HUMAN:  # one retry before the debate blocks
                    attempt = await self.ask(ci, payload, self.turn_timeout)
                    record.attempts = 2
            self._add_usage(record, attempt)
            record.latency_s = round(time.time() - record.started_at, 4)
            self.transcript.append(record)
            if attempt.reply is None:
                record.error = attempt.error
                await self._event(TurnTaken(turn=record))
                raise BlockedError(f"{attempt.failure}: mediator {attempt.error}")
            outcome, _ = loads_object(attempt.reply.content)
            reply, errors = (None, ["reply is not a JSON object"])
            if outcome is not None:
                reply, errors = self._outcome(outcome)
            record.outcome, record.error = outcome, "; ".join(errors) or None
            await self._event(TurnTaken(turn=record))
            if not errors and reply is not None:
                return reply
            if number < self.request.max_repairs:
                self.repairs += 1
                await self._event(RepairAsked(attempt=number + 1, errors=errors[:20]))
        raise BlockedError(
            f"failed repair after {self.request.max_repairs} attempts: " + "; ".join(errors[:5])
        )

    # -- the whole debate -----------------------------------------------------------------
    async def run(self) -> DebateResult:
        """Run the debate to an approved or blocked result (an ``invoke_workflow debate``
        span holds every turn)."""
        request = self.request
        attributes = {"tekton.stage": request.stage, "tekton.debate_id": request.debate_id}
        with spans.workflow("debate", request.run_id, **attributes) as current:
            result = await self._run()
            current.set_attributes(
                {
                    "tekton.status": result.status,
                    "tekton.tokens": result.total_tokens,
                    "tekton.cost_usd": result.cost_usd,
                    "tekton.debate.rounds": result.loops_run,
                    "tekton.debate.accept_share": result.accept_share,
                }
            )
            if result.reason:
                spans.fail(current, result.reason)
            DEBATES.add(1, request.stage, result.status)
            return result

    async def _run(self) -> DebateResult:
        request = self.request
        await self._event(
            DebateStarted(
                roles=self.roles,
                models={r: m for r in self.roles if (m := self._model(r))},
                max_rounds=request.max_rounds,
                consensus_free=request.consensus_free,
                prompt=request.prompt,
            )
        )
        rounds: list[list[TurnRecord]] = []
        outcome: OutcomeReply | None = None
        reason: str | None = None
        people = self.humans if HUMAN in self.roles.values() else None
        if people is not None:
            await people.open()
        try:
            if request.consensus_free:
                rounds.append(await self._round(1, rounds, ("proponent",)))
            else:
                for number in range(1, max(1, request.max_rounds) + 1):
                    rounds.append(await self._round(number, rounds, DEBATERS))
                    if not quorum.quorum_possible(rounds[-1]):
                        absent = [t.ci for t in rounds[-1] if t.abstained]
                        raise BlockedError(f"quorum impossible: {', '.join(absent)} abstained")
                    if quorum.reached(rounds[-1], request.threshold):
                        break
            share = quorum.accept_share(rounds[-1])
            outcome = await self._mediate(rounds, share)
            reason = self._verdict(rounds[-1], share, outcome)
        except BlockedError as exc:
            reason = str(exc)
        finally:
            if people is not None:
                await people.close()
        result = self._result(rounds, outcome, reason)
        await self._event(DebateFinished(result=msgspec.structs.replace(result, transcript=[])))
        return result

    def _verdict(self, last: list[TurnRecord], share: float, outcome: OutcomeReply) -> str | None:
        request = self.request
        if not request.consensus_free and not quorum.reached(last, request.threshold):
            return f"no quorum: weighted accept share {share:.2f} < {request.threshold:.2f}"
        if outcome.status != "approved":
            return f"mediator blocked: {outcome.rationale}"
        confidence = outcome.confidence
        if confidence < request.min_confidence:
            return f"low confidence: {confidence:.2f} < {request.min_confidence:.2f}"
        return None

    def _result(
        self, rounds: list[list[TurnRecord]], outcome: OutcomeReply | None, reason: str | None
    ) -> DebateResult:
        last = rounds[-1] if rounds else []
        outcome = outcome or _NO_OUTCOME
        return DebateResult(
            debate_id=self.request.debate_id,
            stage=self.request.stage,
            status="approved" if reason is None else "blocked",
            reason=reason,
            artifact=outcome.artifact if reason is None else None,
            rationale=outcome.rationale or reason or "",
            dissent=list(outcome.dissent)
            + [f"{t.ci}: {t.position.dissent}" for t in last if t.position and t.position.dissent],
            risks=list(outcome.risks),
            checklist=list(outcome.checklist),
            confidence=outcome.confidence,
            votes=votes_of(last),
            accept_share=round(quorum.accept_share(last), 4),
            loops_run=len(rounds),
            repairs=self.repairs,
            roles=self.roles,
            transcript=self.transcript,
            total_tokens=self._tokens(),
            cost_usd=round(sum(t.cost_usd for t in self.transcript), 8),
            duration_s=round(time.perf_counter() - self.started, 4),
            consensus_free=self.request.consensus_free,
        )
