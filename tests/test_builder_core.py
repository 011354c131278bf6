"""Builder core: safe extraction, atomic output (exception, SIGTERM, SIGKILL), --force, byte-identical
rebuilds, the sharded / threaded Parquet writer and --ir validation."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cifar_fixtures import run_cli, synthetic_spec  # noqa: E402
from ltbench.builders.build import build  # noqa: E402
from ltbench.builders.files import extracted, safe_extract  # noqa: E402
from ltbench.builders.parquet import write_split  # noqa: E402
from ltbench.builders.profile import check_ir  # noqa: E402

from ltbench.errors import LTBenchError  # noqa: E402

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")


def tar_with(path: Path, members: list[tarfile.TarInfo], payload: bytes = b"x") -> Path:
    with tarfile.open(path, "w") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(payload) if m.isfile() else None)
    return path


def file_member(name: str, size: int = 1) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.size = size
    return m


def link_member(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, target
    return m


@pytest.mark.parametrize(
    "member",
    [
        file_member("../escape.txt"),
        link_member("inside/link", "/etc/passwd"),
        link_member("inside/up", "../../outside"),
        link_member("hard", "/etc/passwd", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "symlink-abs", "symlink-up", "hardlink"],
)
def test_safe_extract_refuses_escaping_members(tmp_path, member):
    archive = tar_with(tmp_path / "evil.tar", [file_member("ok.txt"), member])
    dest = tmp_path / "dest"
    with pytest.raises(LTBenchError, match="unsafe member"):
        safe_extract(archive, dest)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "outside").exists()


def test_safe_extract_makes_absolute_names_relative(tmp_path):
    archive = tar_with(tmp_path / "abs.tar", [file_member(str(tmp_path / "escape.txt"))])
    safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "escape.txt").exists()
    assert (tmp_path / "dest" / str(tmp_path).lstrip("/") / "escape.txt").exists()


def test_safe_extract_zip_traversal_and_plain(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(LTBenchError, match="unsafe member"):
        safe_extract(evil, tmp_path / "d1")
    assert not (tmp_path / "escape.txt").exists()
    good = tar_with(tmp_path / "good.tar", [file_member("a/b.txt", 3)], b"abc")
    with extracted(good) as root:
        assert (root / "a" / "b.txt").read_bytes() == b"abc"
    assert not root.exists()  # the temporary directory is removed


def test_corrupt_archive_is_one_error(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    with pytest.raises(LTBenchError, match="corrupt"):
        safe_extract(bad, tmp_path / "d")


def test_exception_mid_write_leaves_nothing(tmp_path):
    spec = synthetic_spec(600, fail_after=100)
    with pytest.raises(RuntimeError, match="injected"):
        build(spec, 10, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_and_rebuild_is_byte_identical(tmp_path):
    a = build(synthetic_spec(), 10, tmp_path / "a", seed=1)
    b = build(synthetic_spec(), 10, tmp_path / "b", seed=1, workers=1)  # serial reads give the same bytes
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    with pytest.raises(LTBenchError, match="already exists"):
        build(synthetic_spec(), 10, tmp_path / "a", seed=2)
    build(synthetic_spec(), 10, tmp_path / "a", seed=2, force=True)
    assert (a / "manifest.json").read_bytes() != (b / "manifest.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["synthetic-lt10"]  # no .tmp / .old left
    with pytest.raises(RuntimeError):
        build(synthetic_spec(fail_after=100), 10, tmp_path / "a", seed=3, force=True)
    assert (a / "manifest.json").exists()  # a failed --force keeps the old build
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["synthetic-lt10"]


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from cifar_fixtures import synthetic_spec
    from ltbench.builders.build import build
    build(synthetic_spec(3000, delay=0.005, marker=Path({marker!r}), marker_after=200), 10, Path({out!r}))
    """
)


def start_and_kill(tmp_path: Path, sig: int) -> Path:
    out, marker = tmp_path / "out", tmp_path / "marker"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), marker=str(marker), out=str(out))
    env = {**os.environ, "LTBENCH_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the build never started writing"
    proc.send_signal(sig)
    proc.wait(60)
    assert proc.returncode != 0
    return out


def test_sigkill_mid_write_leaves_no_output_and_next_build_cleans_up(tmp_path):
    out = start_and_kill(tmp_path, signal.SIGKILL)
    assert not (out / "synthetic-lt10").exists()
    leftovers = [p.name for p in out.iterdir()]
    assert all(name.startswith(".synthetic-lt10.tmp-") for name in leftovers)
    build(synthetic_spec(), 10, out)
    assert [p.name for p in out.iterdir()] == ["synthetic-lt10"]


def test_sigterm_mid_write_cleans_up(tmp_path):
    out = start_and_kill(tmp_path, signal.SIGTERM)
    assert list(out.iterdir()) == []


def test_live_builds_temporaries_are_kept(tmp_path):
    live = tmp_path / f".synthetic-lt10.tmp-{os.getppid()}"  # a running process's build in progress
    live.mkdir()
    build(synthetic_spec(), 10, tmp_path)
    assert live.exists()


def test_writer_shards_in_order_and_threads_match_serial(tmp_path):
    spec = synthetic_spec(1000, side=16)
    data = spec.read(None)
    idx = np.arange(1000)[::-1]
    (tmp_path / "s").mkdir()
    (tmp_path / "t").mkdir()
    serial = write_split(
        tmp_path / "s", "train", data.pool, idx, ["c"] * 10, max_shard_bytes=200_000, workers=1
    )
    threaded = write_split(
        tmp_path / "t", "train", data.pool, idx, ["c"] * 10, max_shard_bytes=200_000, workers=4
    )
    assert len(serial) > 1 and serial == threaded
    assert serial[0] == f"train-00000-of-{len(serial):05d}.parquet"
    for f in serial:
        assert (tmp_path / "s" / f).read_bytes() == (tmp_path / "t" / f).read_bytes()
    paths = [
        p
        for f in serial
        for p in pq.read_table(tmp_path / "s" / f).column("image").combine_chunks().field("path").to_pylist()
    ]
    assert paths == [f"img{i}.png" for i in idx]
    assert not any(p.name.startswith(".") for p in (tmp_path / "s").iterdir())


def test_check_ir():
    assert check_ir(10) == 10 and check_ir(100) == 100 and check_ir(12.5, allow_any=True) == 12.5
    assert check_ir(1, allow_any=True) == 1
    for bad, allow in [(5, False), (0.5, True), (float("nan"), True), (float("inf"), True)]:
        with pytest.raises(LTBenchError):
            check_ir(bad, allow)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--ir", "5"], "not a standard one"),
        (["--ir", "abc"], "not a number"),
        (["--ir", "0.5", "--allow-any-ir"], "below 1"),
        (["--ir", "nan", "--allow-any-ir"], "not a finite number"),
        ([], "needs an imbalance ratio"),
    ],
)
def test_bad_ir_is_one_line(tmp_path, capsys, args, message):
    code, _, err = run_cli(["build", "digits", "--out", tmp_path, *args], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_any_ir_with_flag(tmp_path, capsys):
    code, out, _ = run_cli(["build", "digits", "--ir", "25", "--allow-any-ir", "--out", tmp_path], capsys)
    assert code == 0 and out.strip().endswith("digits-lt25")
