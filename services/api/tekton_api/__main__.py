"""`python -m tekton_api` runs the API service."""

import sys

from tekton_api.main import main

sys.exit(main())
