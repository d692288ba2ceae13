"""``python -m quant.sidecar [--demo]``: run the sidecar in the foreground (as ``quant sidecar``)."""

from __future__ import annotations

import sys

from quant.config import load_settings
from quant.exceptions import QuantError
from quant.sidecar._server import serve


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    demo = "--demo" in args
    try:
        serve(load_settings(), demo=demo)
    except QuantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
