"""Our checkpoint files: safetensors only, self-describing, with errors that say what to do.

Every file this pack writes is a safetensors file whose string metadata carries

- ``fc_format``  — format version (``"1"``);
- ``fc_stage``   — one of `STAGES` (which training stage produced it);
- ``fc_config``  — the JSON of the component's config (a `ModelConfig` for a DiT);
- for a ``"bundle"``: ``fc_config`` is a JSON object ``{component: config}``, ``fc_components`` a
  JSON object ``{component: stage}``, and every tensor name is prefixed ``<component>.``;
- any free-form extra metadata (training command, seed, ...), as strings.

A file without ``fc_*`` keys (a raw Wan DiT, a ComfyUI ``diffusion_models`` file) is *foreign*: its
stage is ``"unknown"``; `foreign` maps its key layout and `dit_loading.build_dit` infers its config.

Before safetensors sees a file, `read_header` checks it byte by byte, so a missing, empty,
truncated, random or pickled file is answered with a message naming the file, what was found and
what to do — never with a raw traceback. Pickles (``torch.save`` files) are never loaded here; the
one guarded exception is `foreign.load_official_generator`. Saving is atomic (temp file + rename).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file, save_file

__all__ = ["FORMAT_VERSION", "STAGES", "PICKLE_EXTENSIONS", "CheckpointError", "Checkpoint", "read_header",
           "save_checkpoint", "save_bundle", "load_checkpoint", "split_bundle"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"
STAGES = ("teacher", "student", "tryoff", "codec", "text", "bundle", "training")  # training = resumable state
PICKLE_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")
_MAX_HEADER = 100_000_000  # safetensors refuses larger headers too
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint file (or state dict) cannot be used; the message names the file and the fix."""


@dataclass
class Checkpoint:
    """A loaded checkpoint. `config` is the raw config dict (None for foreign files)."""

    path: str
    stage: str
    format_version: int | None
    config: dict | None
    tensors: dict[str, torch.Tensor] = field(repr=False)
    metadata: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def foreign(self) -> bool:
        return self.stage == "unknown"


# ----------------------------------------------------------------------------------- header check
def pickle_advice(path: Path, mention_official: bool = True) -> str:
    """How to convert a pickle to safetensors (and, if `mention_official`, the one reader for official files)."""
    text = (f"Pickle files can run arbitrary code when loaded, so this pack never loads them. Convert the file in an "
            f"environment you trust: load it there with torch.load({str(path)!r}, map_location='cpu') (try "
            f"weights_only=True first; use weights_only=False only if you trust where the file came from), take the "
            f"dict of tensors, and re-save it with safetensors.torch.save_file(state_dict, 'model.safetensors').")
    if mention_official:
        text += (" An official FashionChameleon / Self-Forcing training checkpoint (model.pt holding 'generator' / "
                 "'generator_ema') can instead be read with fashionchameleon.runtime.files.foreign.load_official_generator, "
                 "which only uses torch.load(weights_only=True).")
    return text


def pickle_kind(head: bytes) -> str | None:
    """What pickle format the first bytes of a file announce, or None when they announce none."""
    if head.startswith(_ZIP_MAGIC):
        return "a zip archive (the format torch.save writes)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return f"a Python pickle (protocol {head[1]}; legacy torch.save or pickle.dump)"
    return None


@dataclass(frozen=True)
class Probe:
    """The first bytes of a file that exists, is a file and is not empty (`probe_file`)."""

    size: int
    head: bytes  # the first 8 bytes (fewer for tiny files)
    header_len: int | None
    looks_safetensors: bool


def probe_file(path: Path) -> Probe:
    """Read the first bytes of `path`; a missing, directory or empty path raises `CheckpointError`."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file. Check the path (and that the download finished), "
                              f"or pick a file from the list the loader offers.")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file. Point at the .safetensors file inside it.")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes), which usually means an interrupted download "
                              f"or copy. Download or copy it again.")
    with open(path, "rb") as f:
        head = f.read(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else None
        first = b""
        if header_len is not None and 2 <= header_len <= size - 8:
            first = f.read(1)
    return Probe(size, head, header_len, first == b"{")


def read_header(path: str | os.PathLike) -> dict:
    """Parse and validate a safetensors header without trusting the file; return the header dict.

    The dict maps tensor names to ``{"dtype", "shape", "data_offsets"}`` and may hold
    ``"__metadata__"`` (str -> str). Every problem raises `CheckpointError` naming the file.
    """
    path = Path(path)
    probe = probe_file(path)
    if not probe.looks_safetensors:
        kind = pickle_kind(probe.head)
        if kind is not None:
            raise CheckpointError(f"{path}: this is {kind}, not a safetensors file. {pickle_advice(path)}")
        if path.suffix.lower() in PICKLE_EXTENSIONS:
            raise CheckpointError(f"{path}: the extension {path.suffix!r} is a pickle/torch.save format and the file "
                                  f"is not a safetensors file. {pickle_advice(path)}")
    if probe.header_len is None:
        raise CheckpointError(f"{path}: the file is only {probe.size} bytes, shorter than the 8-byte length prefix of a "
                              f"safetensors file: it is truncated or not a checkpoint. Download or copy it again.")
    n = probe.header_len
    if probe.head[:4] == b"GGUF":
        raise CheckpointError(f"{path}: this is a GGUF file, not a safetensors file. Load it with a GGUF loader "
                              f"(e.g. ComfyUI-GGUF), or use the safetensors release of the model.")
    if n > _MAX_HEADER or n < 2:
        raise CheckpointError(f"{path}: not a safetensors file: its first 8 bytes give a header length of {n} bytes "
                              f"(file size {probe.size} bytes), which no safetensors file has. Is it another format "
                              f"(an archive, a pickle, an image)? Use the .safetensors release of the weights.")
    if n > probe.size - 8:
        raise CheckpointError(f"{path}: truncated: the header should be {n} bytes but only {probe.size - 8} bytes "
                              f"follow the length prefix (file size {probe.size}). The download or copy was cut "
                              f"short; fetch the file again.")
    with open(path, "rb") as f:
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a safetensors file (or a corrupted one): its {n}-byte header is not valid "
                              f"JSON ({exc.__class__.__name__}: {exc}). Re-download the file or re-save it with "
                              f"safetensors.") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header is JSON but not an object (found "
                              f"{type(header).__name__}); the file is corrupted. Re-download or re-save it.")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CheckpointError(f"{path}: the safetensors metadata must map strings to strings; found {meta!r:.200}. "
                              f"Re-save the file with string metadata.")
    data_len = probe.size - 8 - n
    worst: tuple[int, str] | None = None
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] or "dtype" not in info or "shape" not in info):
            raise CheckpointError(f"{path}: the header entry for tensor {name!r} is malformed ({info!r:.200}); the "
                                  f"file is corrupted. Re-download or re-save it.")
        if worst is None or offsets[1] > worst[0]:
            worst = (offsets[1], name)
    if worst is not None and worst[0] > data_len:
        raise CheckpointError(f"{path}: truncated: tensor {worst[1]!r} ends at byte {worst[0]} of the data section but "
                              f"the file holds only {data_len} data bytes (file size {probe.size}). The download or "
                              f"copy was cut short; fetch the file again.")
    return header


# ----------------------------------------------------------------------------------- saving
def _config_json(config: Any, where: str) -> str | None:
    if config is None:
        return None
    if hasattr(config, "to_json"):
        text = config.to_json()
        data = json.loads(text) if isinstance(text, str) else text
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        data = dataclasses.asdict(config)
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        raise CheckpointError(f"{where}: config must have to_json(), be a dataclass or a dict; got "
                              f"{type(config).__name__}.")
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: the config must serialise to a JSON object, got {type(data).__name__}.")
    return json.dumps(data, sort_keys=True)


def _check_stage_name(stage: str, where: str, allow_bundle: bool = False) -> None:
    allowed = STAGES if allow_bundle else tuple(s for s in STAGES if s != "bundle")
    if stage not in allowed:
        raise CheckpointError(f"{where}: unknown stage {stage!r}; choose one of {list(allowed)}.")


def _extra_metadata(extra: Mapping[str, Any] | None, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (extra or {}).items():
        if not isinstance(k, str) or k.startswith("fc_"):
            raise CheckpointError(f"{where}: extra metadata key {k!r} is not allowed (keys must be strings and the "
                                  f"'fc_' prefix is reserved for the format).")
        out[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return out


def _prepare_tensors(state_dict: Mapping[str, torch.Tensor], where: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors; tensors sharing storage are cloned (safetensors refuses aliasing)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, v in state_dict.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{where}: state dict entry {k!r} is a {type(v).__name__}, not a tensor; only "
                                  f"tensors go into a checkpoint (put other values in `extra`).")
        t = v.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if t.numel() and ptr in seen:
            t = t.clone()
        elif t.numel():
            seen.add(ptr)
        out[prefix + k] = t
    return out


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _atomic_save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    if path.suffix.lower() in PICKLE_EXTENSIONS:
        raise CheckpointError(f"{path}: refusing to write a safetensors file with the pickle extension "
                              f"{path.suffix!r}; name it '*.safetensors'.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a saved model should read like any new file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    logger.info("saved %s (%d tensors, stage %s)", path, len(tensors), metadata.get("fc_stage"))
    return path


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], stage: str, config: Any,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write `state_dict` as a safetensors file with our metadata, atomically (temp file + rename)."""
    path = Path(path)
    _check_stage_name(stage, str(path))
    metadata = _extra_metadata(extra, str(path))
    metadata.update(fc_format=FORMAT_VERSION, fc_stage=stage)
    cfg = _config_json(config, str(path))
    if cfg is not None:
        metadata["fc_config"] = cfg
    return _atomic_save(path, _prepare_tensors(state_dict, str(path)), metadata)


def save_bundle(path: str | os.PathLike, components: Mapping[str, tuple[Mapping[str, torch.Tensor], str, Any]],
                extra: Mapping[str, Any] | None = None) -> Path:
    """Write several components (name -> (state_dict, stage, config)) into one safetensors file."""
    path = Path(path)
    if not components:
        raise CheckpointError(f"{path}: a bundle needs at least one component.")
    tensors: dict[str, torch.Tensor] = {}
    configs: dict[str, Any] = {}
    stages: dict[str, str] = {}
    for name, (sd, stage, config) in components.items():
        if not isinstance(name, str) or not name or "." in name:
            raise CheckpointError(f"{path}: bundle component name {name!r} must be a non-empty string without '.'.")
        _check_stage_name(stage, f"{path} [{name}]")
        tensors.update(_prepare_tensors(sd, f"{path} [{name}]", prefix=f"{name}."))
        cfg = _config_json(config, f"{path} [{name}]")
        configs[name] = None if cfg is None else json.loads(cfg)
        stages[name] = stage
    metadata = _extra_metadata(extra, str(path))
    metadata.update(fc_format=FORMAT_VERSION, fc_stage="bundle", fc_config=json.dumps(configs, sort_keys=True),
                    fc_components=json.dumps(stages, sort_keys=True))
    return _atomic_save(path, tensors, metadata)


# ----------------------------------------------------------------------------------- loading
def _json_field(path: Path, meta: Mapping[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata {key!r} is not valid JSON ({exc}); the file was edited or corrupted. "
                              f"Re-save it with save_checkpoint.") from None


def _parse_fc(path: Path, meta: Mapping[str, str]) -> tuple[str, int | None, dict | None]:
    """(stage, format_version, raw config) from the metadata; foreign files give ("unknown", None, None)."""
    if not any(k.startswith("fc_") for k in meta):
        return "unknown", None, None
    if "fc_stage" not in meta or "fc_format" not in meta:
        raise CheckpointError(f"{path}: FashionChameleon metadata is incomplete (found keys "
                              f"{sorted(k for k in meta if k.startswith('fc_'))}; need fc_format and fc_stage). "
                              f"Re-save the file with save_checkpoint.")
    try:
        version = int(meta["fc_format"])
    except ValueError:
        raise CheckpointError(f"{path}: fc_format {meta['fc_format']!r} is not a version number. Re-save the file "
                              f"with save_checkpoint.") from None
    if version > int(FORMAT_VERSION):
        raise CheckpointError(f"{path}: written in checkpoint format {version}, but this version of the pack reads up "
                              f"to format {FORMAT_VERSION}. Update the FashionChameleon node pack.")
    stage = meta["fc_stage"]
    if stage not in STAGES:
        raise CheckpointError(f"{path}: unknown stage {stage!r} in the metadata; known stages are {list(STAGES)}. "
                              f"Update the node pack or re-save the file with a known stage.")
    config = _json_field(path, meta, "fc_config") if "fc_config" in meta else None
    if config is not None and not isinstance(config, dict):
        raise CheckpointError(f"{path}: fc_config must be a JSON object, found {type(config).__name__}. Re-save the "
                              f"file with save_checkpoint.")
    return stage, version, config


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def check_stage(path: str, stage: str, expect_stage: str | tuple[str, ...] | None, allow_foreign: bool) -> None:
    """Raise `CheckpointError` unless `stage` is one of `expect_stage` (foreign "unknown" only with `allow_foreign`)."""
    if stage == "unknown":
        if allow_foreign:
            return
        raise CheckpointError(f"{path}: the file has no FashionChameleon metadata (fc_stage), so its stage cannot be "
                              f"checked: it looks like a foreign checkpoint (e.g. a raw Wan DiT). Load DiT weights "
                              f"with build_dit, which infers the config from the tensor shapes, or pass "
                              f"allow_foreign=True.")
    if expect_stage is None:
        return
    wanted = (expect_stage,) if isinstance(expect_stage, str) else tuple(expect_stage)
    if stage in wanted:
        return
    need = " or ".join(wanted)
    msg = (f"{path}: {_article(stage)} {stage} checkpoint was loaded where {_article(need)} {need} is required "
           f"(fc_stage={stage!r}). Choose {_article(need)} {need} checkpoint for this input.")
    if stage == "bundle":
        msg += " This file is a bundle: take one component with split_bundle(load_checkpoint(path))[name]."
    raise CheckpointError(msg)


def load_checkpoint(path: str | os.PathLike, expect_stage: str | tuple[str, ...] | None = None,
                    device: str | torch.device = "cpu", allow_foreign: bool = False) -> Checkpoint:
    """Check the header, check the stage, then load the tensors with safetensors.

    Files without ``fc_*`` metadata load only with ``allow_foreign=True`` (stage ``"unknown"``,
    config None); their stage is then not checked against `expect_stage`.
    """
    path = Path(path)
    header = read_header(path)
    meta = dict(header.get("__metadata__", {}))
    stage, version, config = _parse_fc(path, meta)
    check_stage(str(path), stage, expect_stage, allow_foreign)
    try:
        tensors = load_file(str(path), device=str(device))
    except Exception as exc:  # the header passed our checks; report anything left in our words
        raise CheckpointError(f"{path}: safetensors could not read the tensors ({exc.__class__.__name__}: {exc}). "
                              f"The file is probably corrupted; fetch it again.") from exc
    return Checkpoint(str(path), stage, version, config, tensors, meta)


def split_bundle(ckpt: Checkpoint) -> dict[str, Checkpoint]:
    """The components of a bundle as separate `Checkpoint`s (tensor names without the prefix)."""
    if ckpt.stage != "bundle":
        raise CheckpointError(f"{ckpt.path}: not a bundle (stage {ckpt.stage!r}); use it directly.")
    path = Path(ckpt.path)
    if "fc_components" not in ckpt.metadata:
        raise CheckpointError(f"{path}: bundle metadata has no fc_components; re-save it with save_bundle.")
    stages = _json_field(path, ckpt.metadata, "fc_components")
    configs = ckpt.config or {}
    base = {k: v for k, v in ckpt.metadata.items() if not k.startswith("fc_")}
    out: dict[str, Checkpoint] = {}
    claimed = 0
    for name, stage in stages.items():
        prefix = f"{name}."
        tensors = {k[len(prefix):]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
        claimed += len(tensors)
        cfg = configs.get(name)
        meta = dict(base, fc_format=str(ckpt.format_version), fc_stage=stage)
        if cfg is not None:
            meta["fc_config"] = json.dumps(cfg, sort_keys=True)
        out[name] = Checkpoint(f"{ckpt.path}#{name}", stage, ckpt.format_version, cfg, tensors, meta)
    if claimed != len(ckpt.tensors):
        logger.warning("%s: %d tensors belong to no bundle component", ckpt.path, len(ckpt.tensors) - claimed)
    return out
