"""Local span files stay bounded: a full file becomes <service>.old.jsonl."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tekton_cli.trace import read_spans
from tekton_common.telemetry import FileSpanExporter


def test_a_full_span_file_is_rotated_and_still_read(tmp_path: Path) -> None:
    exporter = FileSpanExporter(tmp_path / "apollo-ci.jsonl", max_bytes=2000)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for n in range(40):
        with tracer.start_as_current_span(f"span {n}"):
            pass
    provider.shutdown()

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["apollo-ci.jsonl", "apollo-ci.old.jsonl"]
    # each file is cut at the first write past the limit: at most one span over it
    one_span = len((tmp_path / "apollo-ci.old.jsonl").read_text().splitlines()[0]) + 1
    for name in files:
        assert (tmp_path / name).stat().st_size < 2000 + one_span
    names = [s["name"] for s in read_spans(tmp_path)]
    assert "span 39" in names  # the newest spans are kept ...
    assert "span 0" not in names  # ... the oldest are gone with the file before
    assert len(names) == len(set(names))
