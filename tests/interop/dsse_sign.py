"""Make DSSE envelopes with securesystemslib for our verifier to check.

Usage: dsse_sign.py OUTDIR

Generates an ECDSA P-256 and an Ed25519 key with `CryptoSigner`, and writes to
OUTDIR:
  {ecdsa,ed25519}.pub.pem   SPKI PEM public keys
  {ecdsa,ed25519}.key.pem   PKCS#8 PEM private keys (`CryptoSigner.private_bytes`)
  keyids.json               securesystemslib's key IDs
  statement.json            the in-toto Statement v1 (SLSA provenance v1) signed below
  {ecdsa,ed25519}.dsse.json envelopes with one signature
  both.dsse.json            one envelope signed by both keys
  tampered.dsse.json        both.dsse.json with its payload changed after signing
"""

import base64
import json
import os
import sys

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def statement() -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.keras", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://veritrain.dev/buildtypes/keras-train/v1",
                "externalParameters": {"epochs": 3, "note": "tab\there, \u00e9"},
                "resolvedDependencies": [
                    {"name": "data/train.csv", "digest": {"sha256": "cd" * 32}}
                ],
            },
            "runDetails": {
                "builder": {"id": "https://example.org/python-builder"},
                "metadata": {
                    "invocationId": "py-1",
                    "finishedOn": "2025-05-01T12:00:00Z",
                },
            },
        },
    }


def main() -> int:
    out = sys.argv[1]
    signers = {
        "ecdsa": CryptoSigner.generate_ecdsa(),
        "ed25519": CryptoSigner.generate_ed25519(),
    }
    keyids = {}
    for name, signer in signers.items():
        private = signer.private_bytes
        with open(os.path.join(out, f"{name}.key.pem"), "wb") as f:
            f.write(private)
        public = load_pem_private_key(private, None).public_key()
        with open(os.path.join(out, f"{name}.pub.pem"), "wb") as f:
            f.write(public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
        keyids[name] = signer.public_key.keyid
    with open(os.path.join(out, "keyids.json"), "w") as f:
        json.dump(keyids, f)

    payload = json.dumps(statement(), indent=2).encode("utf-8")
    with open(os.path.join(out, "statement.json"), "wb") as f:
        f.write(payload)

    def write(name: str, names: list) -> dict:
        envelope = Envelope(payload, PAYLOAD_TYPE, {})
        for n in names:
            envelope.sign(signers[n])
        data = envelope.to_dict()
        with open(os.path.join(out, f"{name}.dsse.json"), "w") as f:
            json.dump(data, f, indent=2)
        return data

    write("ecdsa", ["ecdsa"])
    write("ed25519", ["ed25519"])
    both = write("both", ["ecdsa", "ed25519"])
    tampered = dict(both)
    tampered["payload"] = base64.b64encode(payload.replace(b'"epochs": 3', b'"epochs": 4')).decode()
    assert tampered["payload"] != both["payload"]
    with open(os.path.join(out, "tampered.dsse.json"), "w") as f:
        json.dump(tampered, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
