"""Benchmark of the risk sidecar: prints one JSON object (see quant/sidecar/_bench.py).

python bench/sidecar.py        # same as: quant bench sidecar --json
"""

from __future__ import annotations

import json

from quant.sidecar._bench import run_benchmark

if __name__ == "__main__":
    print(json.dumps(run_benchmark()))
