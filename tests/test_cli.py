import subprocess
import sys

import pytest

from pyspb.cli import main


def test_table_prints_the_three_cavities(capsys):
    assert main(["table", "--cutoff", "5"]) == 0
    text = capsys.readouterr().out
    assert "ideal cavity" in text and "with tip" in text
    assert "99.7%" in text and "0.0%" in text


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "pyspb.cli", "--help"], capture_output=True, text=True, check=True)
    assert "table" in result.stdout


def test_unknown_command_fails():
    with pytest.raises(SystemExit):
        main(["frobnicate"])
