"""Progress while a run lands: file by file on a terminal (checked in a pseudo-terminal), bounded
plain lines in logs and CI."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from tests.conftest import landed, run_cli, write_part

COURIER = str(Path(sys.executable).parent / "courier")


def run_in_terminal(project: Path, *args: str) -> tuple[int, str]:
    """Run `courier` with a pseudo-terminal as its stdout and stderr; returns its exit code and output."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen([COURIER, *args], cwd=project, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        assert ready, "the run printed nothing for 300 s"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(timeout=300), output.decode(errors="replace")


def test_a_terminal_sees_the_bar_move_file_by_file_with_rows(dbt_project):
    for index in range(3):
        write_part(dbt_project, "2026-11-25", f"part-{index}.parquet",
                   [{"order_id": f"{index}-{n}", "amount": n} for n in range(index + 1)])

    code, output = run_in_terminal(dbt_project, "run", "shop", "--all")

    assert code == 0, output
    steps = [int(done) for done in re.findall(r"read (\d)/3 files", output)]
    assert steps == sorted(steps) and set(steps) == {0, 1, 2, 3}, output
    assert "read 3/3 files, 6 rows" in output
    assert "\x1b[" in output  # drawn as a terminal bar, not as plain lines


def test_logs_get_at_most_ten_plain_progress_lines_ending_with_every_file(dbt_project):
    for index in range(30):
        write_part(dbt_project, "2026-11-25", f"part-{index:02}.parquet", [{"order_id": str(index), "amount": 1}])

    result = run_cli(dbt_project, "run", "shop", "--all")

    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if line.strip().startswith("read ")]
    assert 1 <= len(lines) <= 10, lines
    assert lines[-1].startswith("read 30/30 files, 30 rows, ")
    assert "\x1b[" not in result.output
    assert landed(result.output, "orders") == (30, 30, 0)
