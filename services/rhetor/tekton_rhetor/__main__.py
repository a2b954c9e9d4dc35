"""`python -m tekton_rhetor` runs the Rhetor CI on port 45003."""

from __future__ import annotations

import sys

from tekton_common.process import run_ci

if __name__ == "__main__":
    sys.exit(run_ci(None, "tekton_rhetor", fixed_ci="rhetor"))
