"""`python -m tekton_rhetor` runs Rhetor on port 45003."""

from __future__ import annotations

import sys

from tekton_rhetor.app import main

if __name__ == "__main__":
    sys.exit(main())
