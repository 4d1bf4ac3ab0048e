"""Differential oracle: securesystemslib's canonical JSON encoder.

Reads a JSON array of JSON documents (each a string) from argv[1] and writes
to argv[2] a JSON array with, per document, {"ok": <hex of the canonical
bytes>} or {"err": <exception class name>}.
"""
import json
import sys

from securesystemslib.formats import encode_canonical


def one(text):
    try:
        value = json.loads(text)
        out = encode_canonical(value)
        return {"ok": out.encode("utf-8").hex()}
    except Exception as exc:  # noqa: BLE001 - every failure is a verdict here
        return {"err": type(exc).__name__}


with open(sys.argv[1], encoding="utf-8") as f:
    docs = json.load(f)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump([one(d) for d in docs], f)
