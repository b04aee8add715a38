"""The README's quickstart works when pasted as is, against a fresh `yibao serve --demo`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PG_URL, free_port, wait_for_server

ROOT = Path(__file__).parents[1]


def quickstart_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```bash\n(.*?)```", section, flags=re.S))


@pytest.mark.skipif(bool(PG_URL), reason="the quickstart runs the embedded default (SQLite under var/)")
@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("curl") is None, reason="needs openssl and curl")
def test_quickstart_pasted_as_is(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("YIBAO_DATABASE_URL", "YIBAO_HOME")}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--demo", "--people", "200", "--port", str(port)], cwd=tmp_path,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_server(f"http://127.0.0.1:{port}", server, log_path)
            script = quickstart_script().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                                    timeout=120)
        finally:
            server.terminate()
            server.wait(timeout=20)
    assert result.returncode == 0, result.stderr
    answers = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == 2 and all('"infcode":0' in a for a in answers), result.stdout
    assert "金梅艳" in answers[1] and '"sign_no"' in answers[0]
