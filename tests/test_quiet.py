"""nblib.core.quiet and nblib.core.progress: what keeps the frameworks' lines and text progress
bars off the pages people read, and config.shown, which keeps the machine's folders off them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nblib.core import config, progress, quiet


def test_silenced_keeps_descriptor_2_and_restores_it(capfd):
    with quiet.silenced() as captured:
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers\n")
        sys.stderr.write("a framework warning\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "cuda" not in err and "framework warning" not in err
    assert err == "after\n"
    assert "Could not find cuda drivers" in captured[0]
    assert "a framework warning" in captured[0]


def test_silenced_replays_what_explains_a_crash_but_not_a_usage_error(capfd):
    with pytest.raises(RuntimeError), quiet.silenced():
        os.write(2, b"E0000 what went wrong\n")
        raise RuntimeError("crash")
    assert "E0000 what went wrong" in capfd.readouterr().err
    with pytest.raises(KeyError), quiet.silenced(keep=(KeyError,)):
        os.write(2, b"E0000 noise\n")
        raise KeyError("usage")
    assert "noise" not in capfd.readouterr().err


def test_silenced_restores_the_users_log_level():
    os.environ[quiet.LEVEL_VARIABLE] = "1"
    try:
        with quiet.silenced():
            assert os.environ[quiet.LEVEL_VARIABLE] == "3"
        assert os.environ[quiet.LEVEL_VARIABLE] == "1"
    finally:
        os.environ.pop(quiet.LEVEL_VARIABLE)


def test_verbose_shows_everything(capfd):
    with quiet.silenced(verbose=True):
        os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"


def test_loading_the_frameworks_writes_nothing_on_stderr():
    code = (
        "from nblib.core import quiet\n"
        "print(quiet.load_frameworks())\n"
        "import keras, numpy as np\n"
        "keras.ops.convert_to_numpy(keras.ops.ones((2, 2)) + 1)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != quiet.LEVEL_VARIABLE}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=config.ROOT
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() in ("tensorflow", "jax")
    assert res.stderr == "", res.stderr


def test_line_bar_prints_one_line_at_the_end(capsys, monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_VARIABLE, progress.LINES)
    with progress.bar(3, "decoding images at 64 px") as bar:
        for _ in range(3):
            bar.update()
        assert capsys.readouterr().out == ""  # nothing while it runs
    out = capsys.readouterr().out
    assert out.startswith("decoding images at 64 px: 3 in ") and out.count("\n") == 1
    with progress.bar(4, "checking") as bar:
        bar.update()
    assert capsys.readouterr().out.startswith("checking: 1 of 4 in ")


def test_without_the_setting_the_bar_is_tqdm(monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_VARIABLE, raising=False)
    bar = progress.bar(2, "x")
    try:
        assert type(bar).__module__.startswith("tqdm")
    finally:
        bar.close()


def test_shown_paths_carry_no_machine_folder(tmp_path):
    run = tmp_path / "runs" / "full"
    assert config.shown(run / "03_resnet50" / "curves.png", run) == "03_resnet50/curves.png"
    assert config.shown(config.ROOT / "data" / "synthetic") == "data/synthetic"
    assert config.shown(config.ROOT / "runs" / "cpu") == "runs/cpu"
    beside = config.ROOT.parent / "shared" / "data" / "rsna-full"
    assert config.shown(beside) == "../shared/data/rsna-full"
    assert config.shown("relative/as/given") == "relative/as/given"
    elsewhere = Path("/somewhere/else/rsna")
    assert config.shown(elsewhere) == str(elsewhere)  # the user's own choice, kept
    described = config.describe(config.make("03_resnet50", "cpu"))
    assert str(config.ROOT) not in described and '"data_dir": "data/synthetic"' in described
