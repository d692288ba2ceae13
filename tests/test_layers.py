"""The dependency direction of quant/: import-linter's contracts hold, and the sidecar
client imports without the server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lint_imports_when_run_on_the_package_then_every_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_sidecar_client_when_imported_alone_then_no_server_code_is_loaded() -> None:
    code = (
        "import json, sys\n"
        "import quant.sidecar.client\n"
        "from quant.sidecar import SidecarClient\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    unwanted = ("quant.sidecar._server", "quant.sidecar._app", "fastapi", "uvicorn",
                "quant.execution")
    found = [m for m in loaded if any(m == u or m.startswith(u + ".") for u in unwanted)]
    assert found == []
    assert "quant.sidecar.client" in loaded
