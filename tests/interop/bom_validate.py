"""Check CycloneDX BOMs with cyclonedx-python-lib's strict 1.6 JSON validator.

Usage: bom_validate.py FILE [FILE ...]

A FILE ending in `.dsse.json` is a DSSE envelope: its payload is decoded as
an in-toto Statement and its `predicate` is validated (the envelope's
signature is checked by dsse_verify.py, not here).

Prints one JSON line per file: {"file": ..., "valid": true} or
{"file": ..., "valid": false, "errors": [{"path": "/json/pointer", "message": ...}]}
(first 20 errors). Exits 0 if every file is valid, 1 otherwise.
"""

import base64
import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def pointer(path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def main() -> int:
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    all_valid = True
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        if path.endswith(".dsse.json"):
            envelope = json.loads(text)
            statement = json.loads(base64.b64decode(envelope["payload"]))
            text = json.dumps(statement["predicate"])
        errors = validator.validate_str(text, all_errors=True)
        report = {"file": path, "valid": errors is None}
        if errors is not None:
            all_valid = False
            report["errors"] = [
                {"path": pointer(e.data.absolute_path), "message": e.data.message}
                for e, _ in zip(errors, range(20))
            ]
        print(json.dumps(report))
    return 0 if all_valid else 1


if __name__ == "__main__":
    sys.exit(main())
