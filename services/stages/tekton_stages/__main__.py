"""`python -m tekton_stages` runs every stage endpoint and the run coordinator."""

from __future__ import annotations

import sys

from tekton_stages.app import main

if __name__ == "__main__":
    sys.exit(main())
