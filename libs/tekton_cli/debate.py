"""`tekton debate`, `tekton roster` and Rhetor-moderated `tekton team`."""

from __future__ import annotations

import sys
from typing import Any

import msgspec
from nats.aio.msg import Msg

from tekton_cli.output import print_json, table
from tekton_common import bus
from tekton_common.client import BusClient, raise_for_error
from tekton_common.contract.codec import encode
from tekton_common.contract.debates import DebateRequest, TeamRequest
from tekton_common.gather import gather
from tekton_common.settings import Settings
from tekton_common.subjects import RHETOR_DEBATE, RHETOR_ROSTER, RHETOR_TEAM
from tekton_common.wire import decode_object, total_tokens


def _turn_line(turn: dict[str, Any]) -> str:
    head = f"  round {turn['round']} {turn['role']:<10} {turn['ci']:<14}"
    cost = f"({turn['latency_s']:.2f}s, {total_tokens(turn)} tok)"
    if turn.get("abstained"):
        return f"{head} abstained: {turn.get('error')} {cost}"
    if turn["role"] == "mediator":
        outcome = turn.get("outcome") or {}
        state = outcome.get("status", "no outcome")
        note = f" invalid: {turn['error']}" if turn.get("error") else ""
        return f"{head} {state} (confidence {outcome.get('confidence', '-')}){note} {cost}"
    position = turn["position"]
    text = " ".join(position["position"].split())[:90]
    return f"{head} {position['vote']:<7} ({position['self_confidence']:.2f}) {text} {cost}"


def print_event(event: dict[str, Any]) -> None:
    """One debate event as a line of the live view."""
    kind = event.get("type")
    if kind == "debate.started":
        roles = ", ".join(f"{r}={c}" for r, c in event["roles"].items())
        print(f"debate {event['debate_id']} ({event['stage']}): {roles}")
    elif kind == "debate.turn":
        print(_turn_line(event["turn"]))
    elif kind == "debate.round":
        print(f"  round {event['round']}: weighted accept share {event['accept_share']:.2f}")
    elif kind == "debate.repair":
        print(f"  repair {event['attempt']}: {'; '.join(event['errors'][:3])}")
    sys.stdout.flush()


async def debate(
    settings: Settings, request: DebateRequest, timeout: float, as_json: bool
) -> dict[str, Any]:
    """Ask Rhetor for a debate, showing its turns as they happen."""
    nc = await bus.connect(settings, "tekton-cli")
    try:

        async def on_event(msg: Msg) -> None:
            if not as_json:
                print_event(msgspec.json.decode(msg.data))

        sub = await nc.subscribe(f"tekton.debates.{request.debate_id}.events", cb=on_event)
        reply = await BusClient(nc, timeout).request(RHETOR_DEBATE, encode(request), "rhetor-ci")
        await nc.flush()
        await sub.unsubscribe()
    finally:
        await bus.close(nc)
    result: dict[str, Any] = msgspec.json.decode(reply.data)
    if as_json:
        print_json(result)
        return result
    print(
        f"{result['status'].upper()}"
        + (f": {result['reason']}" if result["reason"] else "")
        + f" · rounds {result['loops_run']} · accept share {result['accept_share']:.2f} · "
        f"confidence {result['confidence']:.2f} · {result['total_tokens']} tokens · "
        f"${result['cost_usd']:.4f} · {result['duration_s']:.2f}s"
    )
    if result["artifact"] is not None:
        print_json(result["artifact"])
    return result


async def roster(settings: Settings, as_json: bool) -> list[dict[str, Any]]:
    """Rhetor's roster."""
    nc = await bus.connect(settings, "tekton-cli")
    try:
        reply = await BusClient(nc, 10).request(RHETOR_ROSTER, b"", "rhetor-ci")
    finally:
        await bus.close(nc)
    entries: list[dict[str, Any]] = msgspec.json.decode(reply.data)["cis"]
    if as_json:
        print_json(entries)
    else:
        print(
            table(
                [
                    "CI",
                    "INSTANCES",
                    "ACTIVE",
                    "HEALTHY",
                    "PING",
                    "MODEL",
                    "TURNS",
                    "FAILURES",
                    "MEAN LATENCY",
                    "TOKENS",
                ],
                [
                    (
                        e["ci"],
                        e["instances"],
                        e["active"],
                        "yes" if e["healthy"] else "no",
                        f"{e['ping_ms']:.1f}ms" if e["ping_ms"] is not None else "-",
                        e["model"] or "-",
                        e["turns"],
                        e["failures"],
                        f"{e['mean_latency_s']:.3f}s",
                        e["tokens"],
                    )
                    for e in entries
                ],
            )
        )
    return entries


async def moderated_team(settings: Settings, request: TeamRequest, as_json: bool) -> int:
    """Team chat through Rhetor; replies print as they come, then the moderation."""
    nc = await bus.connect(settings, "tekton-cli")
    count = 0
    try:
        async for msg in gather(nc, RHETOR_TEAM, encode(request), deadline=request.deadline + 60):
            raise_for_error(msg, "rhetor-ci")
            event = decode_object(msg.data)
            if as_json:
                sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
            elif event["type"] == "team.reply":
                count += 1
                print(f"[{event['ai_id']} · {event['elapsed_s']:.2f}s] {event['content']}")
            elif event["type"] == "team.error":
                print(f"[{event['ai_id']}] error: {event['error']}", file=sys.stderr)
            else:
                _print_result(event)
            sys.stdout.flush()
            if event["type"] == "team.result":
                return count
    finally:
        await bus.close(nc)
    return count


def _print_result(result: dict[str, Any]) -> None:
    print(f"-- {result['mode']}: {len(result['answered'])} answered")
    if result.get("synthesis"):
        print(f"[synthesis by {result['mediator']}] {result['synthesis']}")
    if "decision" in result:
        print(f"decision: {result['decision']} (weighted accept {result['accept_share']:.2f})")
        for ci, vote in sorted(result["votes"].items()):
            print(f"  {ci}: {vote['vote']} ({vote['confidence']:.2f})")
