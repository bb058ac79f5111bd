"""The referral-api command line: reindex runs (migrating a fresh database first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_reindex_command(tmp_path: Path) -> None:
    env = {"REFERRAL_API_DATABASE_URL": f"sqlite:///{tmp_path}/r.db", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "referral_api.cli", "reindex", "--type", "Task"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Task: 0 resources reindexed" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "referral_api.cli", "reindex", "--type", "Location"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "not served here: Location" in bad.stderr
