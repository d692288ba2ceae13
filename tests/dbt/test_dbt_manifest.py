"""The dbt manifest the DAG renders from is rebuilt when the project changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from quant.orchestration import project_root
from quant.transform import MANIFEST_COMMAND, ensure_manifest, manifest_is_stale, manifest_path


def test_ensure_manifest_when_older_than_a_model_then_rebuilt_with_every_model() -> None:
    path = ensure_manifest()
    os.utime(path, (0, 0))  # older than every file of the project
    assert manifest_is_stale()
    ensure_manifest()
    assert not manifest_is_stale()
    assert path.stat().st_mtime > 0
    models = {
        node["name"]
        for node in json.loads(path.read_text())["nodes"].values()
        if node["resource_type"] == "model"
    }
    on_disk = {p.stem for p in (project_root() / "dbt" / "models").rglob("*.sql")}
    assert models == on_disk


def test_dag_file_when_manifest_missing_then_import_fails_naming_the_command(tmp_path) -> None:  # noqa: ANN001
    # Import the DAG file in a child process whose quant.transform points at a missing file.
    script = f"""
import sys
import quant.transform as t
from pathlib import Path
t.manifest_path = lambda: Path({str(tmp_path / 'missing.json')!r})
sys.path.insert(0, {str(project_root() / 'plugins')!r})
import runpy
try:
    runpy.run_path({str(project_root() / 'dags' / 'daily_trading.py')!r})
except FileNotFoundError as exc:
    print("ERR", exc)
    raise SystemExit(3)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert MANIFEST_COMMAND in proc.stdout
    assert str(manifest_path()) not in proc.stdout  # it names the file it looked for
