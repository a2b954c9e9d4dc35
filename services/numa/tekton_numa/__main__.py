"""`python -m tekton_numa [--components a,b]` runs Numa on port 45016."""

from __future__ import annotations

import sys

from tekton_numa.app import main

if __name__ == "__main__":
    sys.exit(main())
