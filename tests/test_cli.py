"""The vgg-repro command: help, the models table, and errors without tracebacks."""

import subprocess
import sys

from vgg_repro import cli


def test_models_table_counts_parameters_and_macs(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "D      vgg16                  16   138,357,544   15.47" in out
    assert "C      vgg16-c                16   133,638,952   11.77" in out
    assert len([line for line in out.splitlines() if "vgg1" in line]) == 6


def test_bad_setting_is_one_line_error_not_traceback(capsys):
    assert cli.main(["models", "--width", "0"]) == 2
    captured = capsys.readouterr()
    assert "vgg-repro models: error: width must be a positive number" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_console_script_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "vgg_repro.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "models" in result.stdout and "usage: vgg-repro" in result.stdout


def test_python_m_vgg_repro_is_the_cli():
    """``python -m vgg_repro`` works where the console script is not on the PATH."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "vgg_repro", "models", "--width", "0.0625"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    assert rows["E"][1:3] == ["vgg19", "19"]  # net E, 19 weight layers (Table 1)


def test_every_help_is_free_of_development_notes_and_fit_help_starts_short():
    """No issue numbers in any command's help; fit's names its configs and where to read
    more before the long list of options."""
    import re

    texts = {}
    for name in cli.COMMANDS:
        proc = subprocess.run(
            [sys.executable, "-m", "vgg_repro", name, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0, (name, proc.stderr[-500:])
        texts[name] = proc.stdout
        assert not re.search(r"\bissue \d|#\d\d\b", proc.stdout, flags=re.I), name
    head = "\n".join(texts["fit"].splitlines()[:20])
    assert "--print_config" in head and "Training page" in head
    assert "D_S384" in texts["fit"] and "miniature" in texts["fit"]
