"""Python -> Rust interop: make an in-toto supply chain the way a Python user
would, for Veritrain's verifier to check.

    intoto_make.py OUT_DIR ALGORITHM        (ALGORITHM: ecdsa | ed25519)

- keys: PKCS#8 PEM private keys from `openssl genpkey`, SPKI PEM public keys
  from `openssl pkey -pubout` (root.pem/root.pub, func.pem/func.pub);
- layout: built with the in_toto API (Layout, Step, rules from strings),
  signed with securesystemslib's CryptoSigner, dumped to OUT_DIR/root.layout;
- links: `in-toto-run` for steps `intake` and `run_training`, recording
  stdout (tabs, backslashes, non-ASCII) with -s, into OUT_DIR/links;
- control: Python's own `in-toto-verify` must accept the result.

Work files live in OUT_DIR/work.
"""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from in_toto.models.layout import Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.signer import CryptoSigner

BIN = Path(sys.executable).parent


def genkey(out: Path, name: str, algorithm: str) -> None:
    priv, pub = out / f"{name}.pem", out / f"{name}.pub"
    if algorithm == "ecdsa":
        cmd = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    else:
        cmd = ["openssl", "genpkey", "-algorithm", "ed25519"]
    subprocess.run([*cmd, "-out", str(priv)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True)


def main() -> None:
    out, algorithm = Path(sys.argv[1]), sys.argv[2]
    work, links = out / "work", out / "links"
    for d in (work / "upload", links):
        d.mkdir(parents=True, exist_ok=True)
    (work / "upload" / "data.csv").write_text("id,label\n1,cat\n2,dog\n", encoding="utf-8")
    genkey(out, "root", algorithm)
    genkey(out, "func", algorithm)

    layout = Layout()
    layout.set_relative_expiration(months=1)
    layout.readme = "Veritrain interop: a chain made by Python in-toto"
    func = layout.add_functionary_key_from_path(str(out / "func.pub"))

    intake = Step(name="intake")
    intake.pubkeys = [func["keyid"]]
    intake.set_expected_command_from_string("python3 intake.py")
    intake.add_material_rule_from_string("ALLOW upload/*")
    intake.add_material_rule_from_string("DISALLOW *")
    intake.add_product_rule_from_string("CREATE dataset/data.csv")
    intake.add_product_rule_from_string("DISALLOW *")

    train = Step(name="run_training")
    train.pubkeys = [func["keyid"]]
    train.set_expected_command_from_string("python3 train.py")
    train.add_material_rule_from_string("MATCH * WITH PRODUCTS FROM intake")
    train.add_material_rule_from_string("DISALLOW *")
    train.add_product_rule_from_string("REQUIRE model/weights.bin")
    train.add_product_rule_from_string("CREATE model/*")
    train.add_product_rule_from_string("DISALLOW *")
    layout.steps = [intake, train]

    with open(out / "root.pem", "rb") as f:
        signer = CryptoSigner(load_pem_private_key(f.read(), None))
    metablock = Metablock(signed=layout)
    metablock.create_signature(signer)
    metablock.dump(str(out / "root.layout"))

    # The step commands print tabs, backslashes and non-ASCII, recorded by -s.
    (work / "intake.py").write_text(
        "import os, shutil\n"
        "os.makedirs('dataset', exist_ok=True)\n"
        "shutil.copy('upload/data.csv', 'dataset/data.csv')\n"
        "print('rows:\\t2\\tpath C:\\\\data\\\\new naïve café ✓ 日本')\n",
        encoding="utf-8",
    )
    (work / "train.py").write_text(
        "import os\n"
        "os.makedirs('model', exist_ok=True)\n"
        "open('model/weights.bin', 'wb').write(bytes(range(256)))\n"
        "open('model/metrics.json', 'w').write('{\"accuracy\": 1}')\n"
        "print('epoch 1\\tloss 0.25 \\\\ Größe')\n"
        "import sys; print('warning: ünïcödé\\t\\\\', file=sys.stderr)\n",
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    run = [str(BIN / "in-toto-run"), "--signing-key", str(out / "func.pem"), "-s", "-d", str(links)]
    subprocess.run([*run, "-n", "intake", "-m", "upload", "-p", "dataset", "--", "python3", "intake.py"],
                   cwd=work, env=env, check=True)
    subprocess.run([*run, "-n", "run_training", "-m", "dataset", "-p", "model", "--", "python3", "train.py"],
                   cwd=work, env=env, check=True)

    # Control: the reference verifier accepts what it made.
    subprocess.run([str(BIN / "in-toto-verify"), "--layout", str(out / "root.layout"),
                    "--verification-keys", str(out / "root.pub"), "--link-dir", str(links)],
                   check=True)


if __name__ == "__main__":
    main()
