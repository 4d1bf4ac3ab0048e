"""Oracle for Veritrain's fnmatch: Python's own `fnmatch.fnmatch`, which
in-toto's rule engine uses.

    intoto_fnmatch.py IN.json OUT.json

IN.json is a list of [pattern, name] pairs; OUT.json gets, per pair, true,
false, or "error" when Python refuses the pattern.
"""

import fnmatch
import json
import re
import sys
import warnings

warnings.simplefilter("ignore")  # `re` warns about set syntax like "[[" or "--"

with open(sys.argv[1], encoding="utf-8") as f:
    cases = json.load(f)
verdicts = []
for pattern, name in cases:
    try:
        verdicts.append(fnmatch.fnmatch(name, pattern))
    except re.error:
        verdicts.append("error")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(verdicts, f)
