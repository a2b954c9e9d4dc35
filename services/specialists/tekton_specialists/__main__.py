"""`python -m tekton_specialists --ci apollo` runs exactly one CI."""

from __future__ import annotations

import sys

from tekton_common.process import run_ci

if __name__ == "__main__":
    sys.exit(run_ci(None, "tekton_specialists"))
