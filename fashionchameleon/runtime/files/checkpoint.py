"""Checkpoints: safetensors only, self-describing, with errors that say what to do.

Our files
---------
Every file this pack writes is a safetensors file whose string metadata carries

- ``fc_format``  — format version (``"1"``);
- ``fc_stage``   — one of `STAGES` (which training stage produced it);
- ``fc_config``  — the JSON of the component's config (a `ModelConfig` for a DiT);
- for a ``"bundle"``: ``fc_config`` is a JSON object ``{component: config}``, ``fc_components`` a
  JSON object ``{component: stage}``, and every tensor name is prefixed ``<component>.``;
- any free-form extra metadata (training command, seed, ...), as strings.

A file without ``fc_*`` keys (a raw Wan DiT, a ComfyUI ``diffusion_models`` file) is *foreign*: its
stage is ``"unknown"``, its config is inferred from the tensor shapes (`build_dit`).

Before safetensors sees a file, `read_header` checks it byte by byte, so a missing, empty,
truncated, random or pickled file is answered with a message naming the file, what was found and
what to do — never with a raw traceback. Pickles (``torch.save`` files) can run code when loaded
and are never loaded here, with one narrow exception: `load_official_generator` reads the
official training checkpoints with ``torch.load(..., weights_only=True)``, PyTorch's restricted
unpickler that only rebuilds tensors and plain containers.

What the official code writes (facts read from the public repositories)
------------------------------------------------------------------------
QuanjianSong/FashionChameleon (snapshot 09dd4d5, May 2026; its README still lists "release the
checkpoint" as to do, so no official weights exist yet):

- ``trainer/sft_ic.py`` (teacher SFT) and ``trainer/tf_ic.py`` (teacher forcing) ``save()``:
  ``torch.save({"generator": sd, "global_step": int}, <save_dir>/checkpoint_model_<step:06d>/model.pt)``.
- ``trainer/distill_ic.py`` (GR-DMD student) ``save()``: the same path with
  ``{"generator": sd, "critic": sd}`` plus ``"generator_ema": sd`` once EMA has started.
- ``sd`` comes from ``utils/distributed.py::fsdp_state_dict``: FSDP ``FULL_STATE_DICT`` with
  ``offload_to_cpu=True, rank0_only=True`` on modules wrapped with ``use_orig_params=True``, i.e.
  plain names without FSDP infixes, CPU tensors, a zip-format ``torch.save`` pickle.
- ``generator_ema`` comes from ``utils/distributed.py::EMA_FSDP``: ``named_parameters()`` taken
  under ``FSDP.summon_full_params``, cloned as float32 CPU tensors — parameters only, always fp32.
- The generator is ``backbones/wan_wrapper.py::WanDiffusionWrapper``, which holds the DiT as
  ``self.model`` (``CausalWan22Model`` for the student, ``Wan22Model`` for teacher and critic); its
  scheduler is a plain object, so every key reads ``model.<Wan name>``.
- ``backbones/wan22/modules/causal_model.py``: the causal blocks and head use Wan's names exactly
  (``norm1``, ``self_attn.{q,k,v,o,norm_q,norm_k}``, ``norm3`` (affine only with
  ``cross_attn_norm``), ``cross_attn.*``, ``norm2``, ``ffn.{0,2}``, ``modulation`` ``[1,6,dim]``;
  ``head.{head,modulation}`` ``[1,2,dim]``; ``patch_embedding``, ``text_embedding.{0,2}``,
  ``time_embedding.{0,2}``, ``time_projection.1``). RoPE ``freqs`` is a plain attribute, not a
  buffer, so it is not in state dicts. There are no extra parameters: causality lives in the
  attention mask and KV cache, so student and teacher state dicts share one layout.
- Gradient checkpointing there calls ``torch.utils.checkpoint`` inside ``forward`` (no wrapper
  module), so their names carry no ``_checkpoint_wrapped_module.``.
- Loaders: ``predictor/causal_infer_ic.py`` and ``predictor/stream_infer_ic.py`` take
  ``generator_ema`` when present, else ``generator``; ``predictor/infer_ic.py`` (teacher) takes
  ``generator``; ``trainer/distill_ic.py`` initialises from ``generator`` or ``model``.

guandeh17/Self-Forcing (snapshot 33593df), the code FashionChameleon builds on:

- ``trainer/distillation.py``, ``trainer/diffusion.py``, ``trainer/gan.py`` save the same dict
  layout to ``checkpoint_model_<step:06d>/model.pt``; ``inference.py`` loads ``generator`` or, with
  ``--use_ema``, ``generator_ema``; ``utils/wan_wrapper.py`` also holds the DiT as ``self.model``.
- Its ``utils/distributed.py::EMA_FSDP`` names parameters via ``fsdp_module.module.named_parameters()``
  (the inner module, where nested FSDP units may keep the ``_fsdp_wrapped_module.`` infix), and its
  trainers strip ``_fsdp_wrapped_module.``, ``_checkpoint_wrapped_module.`` and ``_orig_mod.``
  when mapping names — hence `normalize_dit_keys` removes those anywhere in a key.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file, save_file

from ..config import ConfigError, ModelConfig, infer_config
from ..dit.model import WanDiT

__all__ = [
    "FORMAT_VERSION", "STAGES", "PICKLE_EXTENSIONS", "CheckpointError", "Checkpoint", "read_header",
    "save_checkpoint", "save_bundle", "load_checkpoint", "split_bundle", "unwrap_state_dict",
    "normalize_dit_keys", "load_official_generator", "load_dit_state", "build_dit",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"
STAGES = ("teacher", "student", "tryoff", "codec", "text", "bundle", "training")  # training = resumable state
PICKLE_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")
_MAX_HEADER = 100_000_000  # safetensors refuses larger headers too
_ZIP_MAGIC = b"PK\x03\x04"
_DIT_ROOTS = frozenset({"patch_embedding", "text_embedding", "time_embedding", "time_projection", "blocks", "head"})
_INFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
_SELECT_PREFIXES = ("model.diffusion_model.", "diffusion_model.")  # ComfyUI / LDM-style full checkpoints
_UNWRAP_KEYS = ("model", "state_dict", "module")
_LIST = 5  # how many offending keys a message names


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
def _pickle_advice(path: Path, mention_official: bool = True) -> str:
    text = (f"Pickle files can run arbitrary code when loaded, so this pack never loads them. Convert the file in an "
            f"environment you trust: load it there with torch.load({str(path)!r}, map_location='cpu') (try "
            f"weights_only=True first; use weights_only=False only if you trust where the file came from), take the "
            f"dict of tensors, and re-save it with safetensors.torch.save_file(state_dict, 'model.safetensors').")
    if mention_official:
        text += (" An official FashionChameleon / Self-Forcing training checkpoint (model.pt holding 'generator' / "
                 "'generator_ema') can instead be read with fashionchameleon.runtime.files.checkpoint.load_official_generator, "
                 "which only uses torch.load(weights_only=True).")
    return text


def _torch_reason(exc: Exception) -> str:
    """The informative line of a torch.load error (its full text advises weights_only=False, which we never do)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    key = next((ln for ln in lines if "Unsupported global" in ln or "WeightsUnpickler error" in ln), None)
    return f"{exc.__class__.__name__}: {(key or (lines[0] if lines else ''))[:300]}"


def _pickle_kind(head: bytes) -> str | None:
    if head.startswith(_ZIP_MAGIC):
        return "a zip archive (the format torch.save writes)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return f"a Python pickle (protocol {head[1]}; legacy torch.save or pickle.dump)"
    return None


@dataclass(frozen=True)
class _Probe:
    size: int
    head: bytes  # the first 8 bytes (fewer for tiny files)
    header_len: int | None
    looks_safetensors: bool


def _probe(path: Path) -> _Probe:
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
    return _Probe(size, head, header_len, first == b"{")


def read_header(path: str | os.PathLike) -> dict:
    """Parse and validate a safetensors header without trusting the file; return the header dict.

    The dict maps tensor names to ``{"dtype", "shape", "data_offsets"}`` and may hold
    ``"__metadata__"`` (str -> str). Every problem raises `CheckpointError` naming the file.
    """
    path = Path(path)
    probe = _probe(path)
    if not probe.looks_safetensors:
        kind = _pickle_kind(probe.head)
        if kind is not None:
            raise CheckpointError(f"{path}: this is {kind}, not a safetensors file. {_pickle_advice(path)}")
        if path.suffix.lower() in PICKLE_EXTENSIONS:
            raise CheckpointError(f"{path}: the extension {path.suffix!r} is a pickle/torch.save format and the file "
                                  f"is not a safetensors file. {_pickle_advice(path)}")
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


def _check_stage(path: str, stage: str, expect_stage: str | tuple[str, ...] | None, allow_foreign: bool) -> None:
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
    _check_stage(str(path), stage, expect_stage, allow_foreign)
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


# ----------------------------------------------------------------------------------- key normalisation
def unwrap_state_dict(obj: Any, prefer_ema: bool = True, path: str = "<state dict>") -> dict[str, torch.Tensor]:
    """Find the tensor state dict inside training-checkpoint nesting.

    A mapping holding tensors is the state dict (non-tensor entries are dropped). Otherwise descend
    into ``generator_ema`` / ``generator`` (order set by `prefer_ema`), then ``model``,
    ``state_dict``, ``module`` — whichever exists first.
    """
    order = ("generator_ema", "generator") if prefer_ema else ("generator", "generator_ema")
    order += _UNWRAP_KEYS
    cur, trail = obj, []
    for _ in range(8):
        if not isinstance(cur, Mapping):
            raise CheckpointError(f"{path}: expected a dict of tensors at {'/'.join(trail) or 'the top level'}, found "
                                  f"{type(cur).__name__}. Is this a model checkpoint?")
        tensors = {k: v for k, v in cur.items() if isinstance(v, torch.Tensor)}
        if tensors:
            if trail:
                logger.info("%s: using the state dict under %s", path, "/".join(trail))
            return tensors
        key = next((k for k in order if isinstance(cur.get(k), Mapping)), None)
        if key is None:
            raise CheckpointError(f"{path}: no tensors found at {'/'.join(trail) or 'the top level'} (keys: "
                                  f"{sorted(map(str, cur))[:10]}); expected a state dict or one nested under "
                                  f"{list(order)}.")
        trail.append(key)
        cur = cur[key]
    raise CheckpointError(f"{path}: state dict nesting is deeper than expected ({'/'.join(trail)}).")


def _is_dit_key(key: str) -> bool:
    return key.split(".", 1)[0] in _DIT_ROOTS


def normalize_dit_keys(state_dict: Mapping[str, Any], prefer_ema: bool = True,
                       path: str = "<state dict>") -> dict[str, torch.Tensor]:
    """Map the key layouts users bring to the plain Wan layout of `WanDiT`.

    - unwraps ``{"generator_ema"|"generator"|"model"|"state_dict"|"module": sd}`` nesting;
    - removes ``_fsdp_wrapped_module.``, ``_checkpoint_wrapped_module.``, ``_orig_mod.`` anywhere;
    - strips ``module.`` (DDP) when every key has it;
    - keeps only the ``model.diffusion_model.`` / ``diffusion_model.`` keys of a ComfyUI / LDM-style
      full checkpoint, without the prefix;
    - strips ``model.`` (the official ``WanDiffusionWrapper.model``) when every DiT key has it and
      none lacks it (or when every key has it); other keys are left alone and show up as
      unexpected when loading.
    """
    sd = unwrap_state_dict(state_dict, prefer_ema, path)
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        new = k
        for infix in _INFIXES:
            new = new.replace(infix, "")
        if new in out:
            raise CheckpointError(f"{path}: key {k!r} and another key both become {new!r} once wrapper infixes are "
                                  f"removed; the state dict holds two copies of the model. Save one of them alone.")
        out[new] = v
    for _ in range(8):  # peel prefixes until nothing changes (e.g. module.model.blocks...)
        changed = False
        if out and all(k.startswith("module.") for k in out):
            out, changed = {k[len("module."):]: v for k, v in out.items()}, True
        for prefix in _SELECT_PREFIXES:
            chosen = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
            if any(_is_dit_key(k) for k in chosen):
                if len(chosen) != len(out):
                    logger.info("%s: kept the %d '%s*' keys, dropped %d others", path, len(chosen), prefix,
                                len(out) - len(chosen))
                out, changed = chosen, True
                break
        wrapped = any(k.startswith("model.") and _is_dit_key(k[len("model."):]) for k in out)
        bare = any(_is_dit_key(k) for k in out)
        if (wrapped and not bare) or (out and all(k.startswith("model.") for k in out)):
            out = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in out.items()}
            changed = True
        if not changed:
            break
    return out


def load_official_generator(path: str | os.PathLike, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
    """The DiT state dict (plain Wan names) of an official FashionChameleon / Self-Forcing checkpoint.

    safetensors files go through our header check; ``torch.save`` files (``model.pt``) are read
    ONLY with ``torch.load(weights_only=True)``, never with a full pickle load. Nesting is unwrapped
    (``generator_ema`` preferred over ``generator`` when `prefer_ema`) and keys normalised.
    """
    path = Path(path)
    probe = _probe(path)
    if probe.looks_safetensors or (_pickle_kind(probe.head) is None and path.suffix.lower() not in PICKLE_EXTENSIONS):
        return normalize_dit_keys(load_checkpoint(path, allow_foreign=True).tensors, prefer_ema, str(path))
    if _pickle_kind(probe.head) is None:
        raise CheckpointError(f"{path}: neither a safetensors file nor a torch.save file (unrecognised first bytes "
                              f"{probe.head!r}). Fetch the file again.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc).lower():
            raise CheckpointError(f"{path}: torch.load(weights_only=True) refused the file: it holds objects other "
                                  f"than tensors and plain containers ({_torch_reason(exc)}). A full pickle load is "
                                  f"never attempted. {_pickle_advice(path, mention_official=False)}") from None
        raise CheckpointError(f"{path}: the torch.save file could not be read ({_torch_reason(exc)}); it is probably "
                              f"truncated or damaged. Fetch it again.") from None
    return normalize_dit_keys(obj, prefer_ema, str(path))


# ----------------------------------------------------------------------------------- DiT loading
def _first(items: list[str]) -> str:
    return ", ".join(items[:_LIST]) + (", ..." if len(items) > _LIST else "")


def load_dit_state(model: torch.nn.Module, state_dict: Mapping[str, Any], path: str = "<memory>") -> torch.nn.Module:
    """Normalise keys, check them against the model with a readable report, then load strictly.

    Tensors are cast to the model's dtypes. A model whose parameters are on the meta device (built
    without memory) receives the tensors by assignment.
    """
    sd = normalize_dit_keys(state_dict, path=path)
    target = model.state_dict()
    missing = [k for k in target if k not in sd]
    unexpected = [k for k in sd if k not in target]
    shapes = [f"{k}: file {list(sd[k].shape)} vs model {list(target[k].shape)}"
              for k in target if k in sd and tuple(sd[k].shape) != tuple(target[k].shape)]
    if missing or unexpected or shapes:
        cfg = getattr(model, "cfg", None)
        what = (f"{type(model).__name__}(dim={cfg.dim}, ffn_dim={cfg.ffn_dim}, layers={cfg.num_layers}, "
                f"in={cfg.in_dim}, out={cfg.out_dim}, text_dim={cfg.text_dim})" if cfg else type(model).__name__)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (first: {_first(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (first: {_first(unexpected)})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (first: {_first(shapes)})")
        raise CheckpointError(f"{path}: the weights do not fit {what}: " + "; ".join(parts) + ". Check that the file "
                              "is a Wan-layout DiT made for this config (build_dit infers the config from the "
                              "file), not a LoRA, VAE or text-encoder file.")
    assign = any(t.is_meta for t in target.values())
    cast = {}
    for k, v in sd.items():
        ref = target[k]
        v = v.to(dtype=ref.dtype) if v.dtype != ref.dtype else v
        if not assign and v.device != ref.device:
            v = v.to(ref.device)
        cast[k] = v.contiguous()
    model.load_state_dict(cast, strict=True, assign=assign)
    return model


# config field -> the tensor whose shape (or presence) fixes it, for disagreement messages
_SHAPE_FIELDS = {
    "dim": "patch_embedding.weight",
    "in_dim": "patch_embedding.weight",
    "patch_size": "patch_embedding.weight",
    "ffn_dim": "blocks.0.ffn.0.weight",
    "num_layers": "blocks.N",
    "text_dim": "text_embedding.0.weight",
    "freq_dim": "time_embedding.0.weight",
    "out_dim": "head.head.weight",
    "qk_norm": "blocks.0.self_attn.norm_q.weight",
    "cross_attn_norm": "blocks.0.norm3.weight",
}


def _config_conflicts(meta_cfg: ModelConfig, inferred: ModelConfig) -> list[str]:
    out = []
    for name, key in _SHAPE_FIELDS.items():
        said, found = getattr(meta_cfg, name), getattr(inferred, name)
        if said == found:
            continue
        if name == "num_layers":
            out.append(f"metadata says num_layers={said} but the file has {found} blocks")
        elif isinstance(said, bool):
            out.append(f"metadata says {name}={said} but {key} is {'present' if found else 'absent'}")
        else:
            out.append(f"metadata says {name}={list(said) if isinstance(said, tuple) else said} but {key} has "
                       f"{name} {list(found) if isinstance(found, tuple) else found}")
    return out


@torch.inference_mode(False)
def build_dit(ckpt_or_path: Checkpoint | str | os.PathLike, expect_stage: str | tuple[str, ...] | None = ("teacher", "student"),
              dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> WanDiT:
    """Build a `WanDiT` from a checkpoint (ours or a foreign Wan-layout file) and load it strictly.

    The config comes from the ``fc_config`` metadata when present, else from the tensor shapes;
    metadata that disagrees with the shapes is an error. `dtype` None keeps the stored dtype of
    the weights. The model is built on the meta device and receives the tensors by assignment (no
    second copy of the weights), so when a `Checkpoint` is passed and no cast or move is needed the
    model's parameters share storage with ``ckpt.tensors``. Returned in eval mode.

    Built outside `torch.inference_mode` even when called inside it (ComfyUI runs every node so):
    inference tensors have no version counter, so the model's fused q/k/v weights could not be
    cached and would be rebuilt every pass.
    """
    if isinstance(ckpt_or_path, Checkpoint):
        ckpt = ckpt_or_path
        _check_stage(ckpt.path, ckpt.stage, expect_stage, allow_foreign=True)
    else:
        ckpt = load_checkpoint(ckpt_or_path, expect_stage=expect_stage, device="cpu", allow_foreign=True)
    path = ckpt.path
    tensors = normalize_dit_keys(ckpt.tensors, path=path)
    try:
        inferred = infer_config(tensors, name=Path(path).stem)
    except (ConfigError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{path}: cannot read a Wan-layout DiT from this file ({exc}). Keys look like: "
                              f"{_first(list(tensors))}.") from None
    if ckpt.config is not None:
        try:
            cfg = ModelConfig.from_json(ckpt.config)
        except (ConfigError, TypeError) as exc:
            raise CheckpointError(f"{path}: the config in the metadata is not a valid model config ({exc}). Re-save "
                                  f"the file with the right config, or strip fc_config to infer it.") from None
        conflicts = _config_conflicts(cfg, inferred)
        if conflicts:
            raise CheckpointError(f"{path}: the config in the metadata disagrees with the tensors: "
                                  + "; ".join(conflicts) + ". The file was saved with the wrong config or edited; "
                                  "re-save it with the right config.")
    else:
        cfg = inferred
        logger.info("%s: no config in the metadata; inferred %s", path, cfg)
    if dtype is None:
        stored = tensors["patch_embedding.weight"].dtype
        dtype = stored if stored.is_floating_point else torch.float32
    with torch.device("meta"):
        model = WanDiT(cfg)
    if any(True for _ in model.buffers()):  # buffers are not in the file: build them for real
        model = WanDiT(cfg)
        model.to(device=device, dtype=dtype)
    else:
        model.to(dtype=dtype)
    tensors = {k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in tensors.items()}
    load_dit_state(model, tensors, path)
    return model.eval()
