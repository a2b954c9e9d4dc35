"""The contract between Tekton's processes, as code: every message that crosses a
process boundary is a msgspec Struct here, with its identifiers and ranges checked
where it is decoded.

- `ids`: the identifier pattern (run, debate, stage, CI, instance ids);
- `limits`: every numeric range and size bound, and the named defaults;
- `schemas`: JSON Schemas that arrive in requests, checked before use;
- `codec`: JSON bytes to Structs and back, with errors that name the field;
- `runs`: run and stage requests and replies;
- `debates`: debate requests, positions, turns and results.
"""
