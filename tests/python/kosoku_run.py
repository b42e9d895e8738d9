"""Runs the Autobahn cases with kosoku against ADDR (host:port) and prints one line per case:
`<case> <behavior> <behaviorClose>`, sorted. Usage: kosoku_run.py ADDR OUTDIR.

Options as in shared/reference/smuggling-and-upgrade-cases.md §4: `-x '12.*' -x '13.*' -p 8`
(12.x/13.x need permessage-deflate support in the fuzzing client, which kosoku lacks).
"""

import json
import os
import subprocess
import sys


def main(addr, outdir):
    kosoku = os.path.join(os.path.dirname(sys.executable), "kosoku")
    # kosoku exits 1 when any case fails; the report is what matters.
    run = subprocess.run(
        [kosoku, "-m", "fuzzingclient", "-x", "12.*", "-x", "13.*", "-p", "8", "-o", outdir, addr],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
    )
    index_path = os.path.join(outdir, "index.json")
    if not os.path.exists(index_path):
        sys.stderr.write(run.stdout.decode(errors="replace")[-4000:])
        sys.exit(f"kosoku wrote no report (exit status {run.returncode})")
    with open(index_path) as f:
        index = json.load(f)
    for agent, cases in index.items():
        for case, result in cases.items():
            print(case, result["behavior"], result["behaviorClose"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
