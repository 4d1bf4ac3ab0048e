"""Verify a DSSE envelope with securesystemslib, the reference implementation.

Usage: dsse_verify.py ENVELOPE THRESHOLD PUBKEY.pem [PUBKEY.pem ...]

Public keys are SPKI PEM files; they are loaded the way Python in-toto loads
keys (`SSlibKey.from_crypto`), so the key IDs are securesystemslib's own.
Prints one JSON line: {"ok": true, "keyids": [...], "payload_type": ..., "payload_type_field": ...}
and exits 0, or prints {"ok": false, "error": "..."} and exits 1.
"""

import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main() -> int:
    envelope_path, threshold, *key_paths = sys.argv[1:]
    keys = []
    for path in key_paths:
        with open(path, "rb") as f:
            keys.append(SSlibKey.from_crypto(load_pem_public_key(f.read())))
    with open(envelope_path, "rb") as f:
        data = json.load(f)
    try:
        envelope = Envelope.from_dict(data)
        accepted = envelope.verify(keys, int(threshold))
    except Exception as e:  # report every refusal the same way
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    statement = json.loads(envelope.payload)
    print(
        json.dumps(
            {
                "ok": True,
                "keyids": sorted(accepted),
                "payload_type": envelope.payload_type,
                "statement_type": statement.get("_type"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
