"""Safety: only safetensors are loaded, model paths stay in the model folders, no network, nothing written.

- a scan of every Python file of the repository for loaders that unpickle (torch.load, pickle,
  numpy with allow_pickle, ...): none exists outside the one refusal-guarded reader, which uses
  torch.load(weights_only=True);
- nodes/folders.py resolves a widget value inside the registered folders only;
- the engine and every node run with the socket module disabled;
- the nodes write no file: not in the working directory, the temp directory or the model folders.
"""
from __future__ import annotations

import ast
import builtins
import io
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from conftest import MICRO, randomize
from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.dit.model import WanDiT
from fashionchameleon.runtime.stream.session import StreamSession
from node_harness import PER_CHUNK, ROOT, SIZE, img, micro_parts, run

# fully qualified callables that unpickle (or run code from) a file; `torch.load` is allowed in ALLOWED only
UNPICKLERS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "dill.load",
              "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load", "marshal.load", "marshal.loads",
              "shelve.open", "torch.jit.load", "torch.package.PackageImporter", "yaml.load", "yaml.unsafe_load",
              "pandas.read_pickle", "torch.load"}
ALLOWED = {("fashionchameleon/runtime/files/foreign.py", "torch.load")}  # load_official_generator: weights_only=True only


# ----------------------------------------------------------------------------------- only safetensors
def python_files() -> list[Path]:
    """The repository's Python files as git sees them (tracked, and untracked ones it does not ignore)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / p for p in out if (ROOT / p).is_file()]


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> fully qualified name, from the module's imports."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update({a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                          for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return names


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def risky_loads(source: str, filename: str = "<probe>") -> list[tuple[int, str, ast.Call]]:
    """(line, qualified name, call) of every call that can unpickle, incl. numpy.load(allow_pickle=True)."""
    tree = ast.parse(source, filename=filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (name := _dotted(node.func)) is None:
            continue
        head, _, rest = name.partition(".")
        full = aliases.get(head, head) + (f".{rest}" if rest else "")
        pickled_numpy = full == "numpy.load" and any(
            k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
            for k in node.keywords)
        if full in UNPICKLERS or pickled_numpy:
            found.append((node.lineno, full, node))
    return found


def _weights_only(call: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def test_nothing_in_the_repository_unpickles_outside_the_guarded_reader():
    files = python_files()
    assert len(files) >= 80
    bad, allowed = [], []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for line, name, call in risky_loads(path.read_text(), rel):
            if (rel, name) in ALLOWED and _weights_only(call):
                allowed.append(f"{rel}:{line}")
            else:
                bad.append(f"{rel}:{line} calls {name}")
    assert not bad, "\n".join(bad)
    assert len(allowed) == 1  # the one reader of official torch.save checkpoints, behind its pickle refusal


def test_the_scan_catches_every_way_of_unpickling():
    probe = ("import pickle, torch\nimport numpy as np\nfrom pickle import loads as ld\nfrom torch import load\n"
             "pickle.load(f)\nld(b)\ntorch.load(p)\nload(p, weights_only=True)\nnp.load(p, allow_pickle=True)\n"
             "np.load(p)\nnp.load(p, allow_pickle=False)\ntorch.jit.load(p)\n")
    assert [(line, name) for line, name, _ in risky_loads(probe)] == [
        (5, "pickle.load"), (6, "pickle.loads"), (7, "torch.load"), (8, "torch.load"), (9, "numpy.load"),
        (12, "torch.jit.load")]
    calls = {line: call for line, _, call in risky_loads(probe)}
    assert _weights_only(calls[8]) and not _weights_only(calls[7])


def test_the_model_folders_list_and_load_safetensors_only(host):
    assert set(host.fp.folder_names_and_paths["fashionchameleon"][1]) == {".safetensors", ".sft"}
    assert host.E.checkpoint.PICKLE_EXTENSIONS == (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")


# ----------------------------------------------------------------------------------- model paths
@pytest.fixture
def folder(host):
    root = host.models / "fashionchameleon"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "sub" / "ok.safetensors").write_bytes(b"x")
    return root


@pytest.mark.parametrize("name", ["../outside.safetensors", "sub/../../outside.safetensors", "/etc/passwd",
                                  "..\\..\\outside.safetensors", "C:/Windows/x.safetensors", "a\0b.safetensors"])
def test_a_widget_value_cannot_leave_the_model_folders(host, folder, name):
    (host.models / "outside.safetensors").write_bytes(b"x")  # a file one level up, which '..' would reach
    with pytest.raises(ValueError, match="points outside the model folders"):
        host.folders.resolve(f"fashionchameleon/{name}")


def test_a_file_inside_resolves_and_a_host_lookup_leaving_the_folder_is_refused(host, folder, monkeypatch):
    assert host.folders.resolve("fashionchameleon/sub/ok.safetensors") == folder / "sub" / "ok.safetensors"
    monkeypatch.setattr(host.fp, "get_full_path", lambda kind, name: "/etc/hostname")  # a lookup that escaped
    with pytest.raises(ValueError, match="resolved to /etc/hostname, outside the 'fashionchameleon' folders"):
        host.folders.resolve("fashionchameleon/sub/ok.safetensors")


def test_symbolic_links_inside_a_model_folder_are_followed_as_comfyui_does(host, folder, tmp_path):
    target = tmp_path / "big_disk" / "model.safetensors"
    target.parent.mkdir()
    target.write_bytes(b"weights")
    link = folder / "linked.safetensors"
    link.symlink_to(target)
    try:
        assert "fashionchameleon/linked.safetensors" in host.folders.model_choices()
        resolved = host.folders.resolve("fashionchameleon/linked.safetensors")
        assert resolved == link and resolved.read_bytes() == b"weights"
    finally:
        link.unlink()


# ----------------------------------------------------------------------------------- no network, no writes
@pytest.fixture
def offline(monkeypatch):
    """The socket module refuses every connection and name lookup while the test runs."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname", "socketpair"):
        monkeypatch.setattr(socket, name, refuse)


@pytest.fixture
def no_writes(monkeypatch, tmp_path):
    """An empty working and temp directory, and every Python-level open for writing recorded."""
    import torch._dynamo  # noqa: F401 - torch creates its compile cache folder in the temp dir on this first import
    # (building a model on the meta device pulls it in); that is torch's, and ComfyUI has imported it already

    cwd, temp = tmp_path / "cwd", tmp_path / "temp"
    cwd.mkdir(), temp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    writes = []
    real_open, real_os_open = builtins.open, os.open

    def recording_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            writes.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    def recording_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writes.append(str(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(io, "open", recording_open)
    monkeypatch.setattr(os, "open", recording_os_open)
    return writes, cwd, temp


def _listing(*roots: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_the_engine_streams_offline(offline, micro_codec, micro_text):
    torch.manual_seed(0)
    model = randomize(WanDiT(MICRO)).eval()
    images = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    session = StreamSession(model, micro_codec, micro_text, images[:1], {"full": images[1]}, "walk", seed=1,
                            config=StreamConfig(sink_frames=3, window_frames=6))
    session.schedule_switch(PER_CHUNK, "full", images[2])
    with torch.inference_mode():
        frames = [c.frames for c in session.generate(3 * PER_CHUNK)]
    assert len(frames) == 3 and all(torch.isfinite(f).all() for f in frames)


def test_every_node_runs_offline_and_writes_nothing(host, model, offline, no_writes, tmp_path_factory, monkeypatch):
    writes, cwd, temp = no_writes
    E = host.E
    cfg, codec, text = micro_parts(E)
    weights = tmp_path_factory.mktemp("weights_offline")
    for name, part, stage, config in (("codec", codec, "codec", codec.config), ("text", text, "text", text.config),
                                      ("student", model.student, "student", cfg),
                                      ("tryoff", model.tryoff, "tryoff", cfg)):
        E.checkpoint.save_checkpoint(weights / f"{name}.safetensors", part.state_dict(), stage, config)
    monkeypatch.setattr(E.fc, "WEIGHTS_DIR", weights)
    watched = (cwd, temp, host.models, weights)
    before = _listing(*watched)
    writes.clear()

    (loaded,) = run(host.load.LoadTeacher, model="embedded (bundled)", dtype="fp32", device="cpu")
    (sample,) = run(host.sample.LoadSample, image="garment1_upper.png")
    frames, stream, _, *_ = run(host.gen.StreamGenerate, model=loaded, reference=img(1), garment=sample, prompt="walk",
                            frames=PER_CHUNK, seed=3, schedule_garments=img(2), switch_frames="6")
    (swapped,) = run(host.swap.SwapGarment, stream=stream, garment=img(3), slot="full", policy="refresh only")
    (refreshed,) = run(host.kv.KVRefresh, stream=swapped, refresh="all", withdraw=True, keep_last=0, keep_sink=False,
                       disentangle=True)
    more, _, _, *_ = run(host.gen.StreamGenerate, model=loaded, stream=refreshed, prompt="", frames=2 * PER_CHUNK, seed=0)
    (garment,) = run(host.tryoff.TryOff, model=loaded, person=img(4), slot="upper", seed=1, steps=2)

    assert frames.shape[0] == PER_CHUNK and more.shape[0] == 2 * PER_CHUNK and garment.shape == (1, SIZE, SIZE, 3)
    assert writes == [], f"the nodes opened files for writing: {writes}"
    assert _listing(*watched) == before and not any(cwd.iterdir()) and not any(temp.iterdir())
