"""A small stand-in for the parts of ComfyUI the node layer uses, for unit tests without ComfyUI.

Modules built here: `comfy`, `comfy.utils` (ProgressBar and its global hook), `comfy.model_management`
(devices, dtype, interrupts as ComfyUI 0.38 raises them, a BaseException; model loading), `comfy.cli_args` (preview settings), `comfy.latent_formats` (the
Wan latent statistics), `comfy_api`, `comfy_api.latest`
(`ComfyExtension`, `io`, `InputImpl.VideoFromComponents`, `Types.VideoComponents`) and `folder_paths`. Constructor signatures follow ComfyUI 0.8's
`comfy_api/latest/_io.py` keyword for keyword (only the types the pack uses), so that a misspelt
option fails here as it would in ComfyUI. Behaviour is the minimum the tests need: the progress bar
calls its hook on every update (ComfyUI throttles non-preview updates), and `interrupt_processing`
works like ComfyUI's flag.

`stub_modules(models_dir)` returns the modules to put in `sys.modules`; `load_pack(root, name)`
imports the repository as ComfyUI imports a custom-node directory (its `__init__.py` as a package
under a path-derived name), so the pack's relative imports are exercised for real.
"""
from __future__ import annotations

import enum
import importlib.util
import os
import sys
import threading
import types
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["stub_modules", "load_pack", "pack_module_name", "hosted_pack", "interrupt_exception"]


# ----------------------------------------------------------------------------------- comfy_api.latest.io
class _IO:
    Parent: Any = None

    @property
    def io_type(self) -> str:
        return self.Parent.io_type


class Input(_IO):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 extra_dict=None, raw_link: bool = None, advanced: bool = None):
        self.id, self.display_name, self.optional, self.tooltip, self.lazy = id, display_name, optional, tooltip, lazy


class WidgetInput(Input):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: Any = None, socketless: bool = None, widget_type: str = None, force_input: bool = None,
                 extra_dict=None, raw_link: bool = None, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
        self.default = default


class Output(_IO):
    def __init__(self, id: str = None, display_name: str = None, tooltip: str = None, is_output_list=False):
        self.id, self.display_name, self.tooltip, self.is_output_list = id, display_name or id, tooltip, is_output_list


def _comfytype(io_type: str, input_cls=Input, output_cls=Output):
    """A socket type with its own Input/Output subclasses bound to `io_type`."""
    kind = type(io_type.title(), (), {"io_type": io_type})
    kind.Input = type("Input", (input_cls,), {"Parent": kind})
    kind.Output = type("Output", (output_cls,), {"Parent": kind})
    return kind


class _BooleanInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: bool = None, label_on: str = None, label_off: str = None, socketless: bool = None,
                 force_input: bool = None, extra_dict=None, raw_link: bool = None, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input)


class _IntInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: int = None, min: int = None, max: int = None, step: int = None,
                 control_after_generate=None, display_mode=None, socketless: bool = None, force_input: bool = None,
                 extra_dict=None, raw_link: bool = None, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input)
        self.min, self.max, self.step, self.control_after_generate = min, max, step, control_after_generate


class _StringInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 multiline=False, placeholder: str = None, default: str = None, dynamic_prompts: bool = None,
                 socketless: bool = None, force_input: bool = None, extra_dict=None, raw_link: bool = None,
                 advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input)
        self.multiline = multiline


class _ComboInput(WidgetInput):
    def __init__(self, id: str, options=None, display_name: str = None, optional=False, tooltip: str = None,
                 lazy: bool = None, default=None, control_after_generate=None, upload=None, image_folder=None,
                 remote=None, socketless: bool = None, extra_dict=None, raw_link: bool = None,
                 advanced: bool = None):
        if isinstance(options, type) and issubclass(options, enum.Enum):
            options = [v.value for v in options]
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None)
        self.options = options


class _ComboOutput(Output):
    def __init__(self, id: str = None, display_name: str = None, options: list[str] = None, tooltip: str = None,
                 is_output_list=False):
        super().__init__(id, display_name, tooltip, is_output_list)


class Hidden(str, enum.Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"


@dataclass
class Schema:
    """The fields ComfyUI 0.8 and 0.38 both accept (0.38 adds search_aliases, is_dev_only, essentials_category,
    has_intermediate_output, ..., which 0.8 rejects), so a pack that passes here is accepted by both."""

    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def validate(self) -> None:
        """As ComfyUI: input ids unique, output ids unique (outputs without an id get one in finalize)."""
        ids = [i.id for i in self.inputs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"Input ids must be unique, got {ids}")
        for i, o in enumerate(self.outputs):
            if o.id is None:
                o.id = f"_{i}_{o.io_type}_"
        out_ids = [o.id for o in self.outputs]
        if len(set(out_ids)) != len(out_ids):
            raise ValueError(f"Output ids must be unique, got {out_ids}")


class ComfyNode:
    hidden = None

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs):
        raise NotImplementedError


class NodeOutput:
    def __init__(self, *args: Any, ui=None, expand: dict = None, block_execution: str = None):
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    @property
    def result(self):
        return self.args if len(self.args) > 0 else None

    def __getitem__(self, index) -> Any:
        return self.args[index]


def Custom(io_type: str):
    return _comfytype(io_type)


def _io_module() -> types.ModuleType:
    io = types.ModuleType("comfy_api.latest.io")
    io.Input, io.WidgetInput, io.Output, io.Schema, io.ComfyNode, io.NodeOutput = (
        Input, WidgetInput, Output, Schema, ComfyNode, NodeOutput)
    io.Hidden, io.Custom = Hidden, Custom
    io.Boolean = _comfytype("BOOLEAN", _BooleanInput)
    io.Int = _comfytype("INT", _IntInput)
    io.Float = _comfytype("FLOAT", WidgetInput)
    io.String = _comfytype("STRING", _StringInput)
    io.Combo = _comfytype("COMBO", _ComboInput, _ComboOutput)
    io.Image = _comfytype("IMAGE")
    io.Mask = _comfytype("MASK")
    io.Vae = _comfytype("VAE")
    io.Conditioning = _comfytype("CONDITIONING")
    io.Video = _comfytype("VIDEO")
    return io


# ----------------------------------------------------------------------------------- comfy_api.latest video types
@dataclass
class VideoComponents:
    """`Types.VideoComponents`, keyword for keyword as ComfyUI 0.8's."""

    images: torch.Tensor
    frame_rate: Any
    audio: dict | None = None
    metadata: dict | None = None


class VideoFromComponents:
    """`InputImpl.VideoFromComponents`: a VIDEO made of an IMAGE batch, a frame rate and optional audio."""

    def __init__(self, components: VideoComponents):
        self._components = components

    def get_components(self) -> VideoComponents:
        c = self._components
        return VideoComponents(images=c.images, audio=c.audio, frame_rate=c.frame_rate)

    def get_dimensions(self) -> tuple[int, int]:
        return self._components.images.shape[2], self._components.images.shape[1]  # (width, height)

    def get_frame_count(self) -> int:
        return int(self._components.images.shape[0])

    def get_frame_rate(self):
        return self._components.frame_rate


class ComfyExtension(ABC):
    async def on_load(self) -> None:
        """Called once when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list:
        """The node classes."""


# ----------------------------------------------------------------------------------- comfy.*
def interrupt_exception(base: type[BaseException] = BaseException) -> type[BaseException]:
    """ComfyUI's InterruptProcessingException on `base`: BaseException in ComfyUI 0.38, Exception in 0.8.

    `comfy.model_management.throw_exception_if_processing_interrupted` raises whichever class the
    stand-in module holds when it is called, so a test can set the other one.
    """
    return type("InterruptProcessingException", (base,), {"__module__": "comfy.model_management"})


def _model_management() -> types.ModuleType:
    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = interrupt_exception()
    state = {"interrupt": False}
    lock = threading.RLock()

    def interrupt_current_processing(value=True):
        with lock:
            state["interrupt"] = value

    def processing_interrupted():
        with lock:
            return state["interrupt"]

    def throw_exception_if_processing_interrupted():
        with lock:
            if state["interrupt"]:
                state["interrupt"] = False
                raise mm.InterruptProcessingException()

    mm.interrupt_current_processing = interrupt_current_processing
    mm.processing_interrupted = processing_interrupted
    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    mm.get_torch_device = lambda: torch.device("cpu")  # as under --cpu
    mm.intermediate_device = lambda: torch.device("cpu")
    mm.unet_offload_device = lambda: torch.device("cpu")

    def unet_dtype(device=None, model_params=0, supported_dtypes=(torch.float16, torch.bfloat16, torch.float32),
                   weight_dtype=None):
        return torch.float32  # what ComfyUI picks on the CPU

    mm.unet_dtype = unet_dtype
    mm.loaded = []  # the patchers `load_models_gpu` was asked to load, in order

    def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                        force_full_load=False):
        mm.loaded.extend(models)  # everything already lives on the CPU

    mm.load_models_gpu = load_models_gpu
    return mm


def _utils() -> types.ModuleType:
    utils = types.ModuleType("comfy.utils")
    utils.PROGRESS_BAR_HOOK = None

    def set_progress_bar_global_hook(function):
        utils.PROGRESS_BAR_HOOK = function

    class ProgressBar:
        def __init__(self, total, node_id=None):
            self.total, self.current, self.node_id = total, 0, node_id
            self.hook = utils.PROGRESS_BAR_HOOK

        def update_absolute(self, value, total=None, preview=None):
            if total is not None:
                self.total = total
            self.current = min(value, self.total)
            if self.hook is not None:
                self.hook(self.current, self.total, preview, node_id=self.node_id)

        def update(self, value):
            self.update_absolute(self.current + value)

    utils.ProgressBar = ProgressBar
    utils.set_progress_bar_global_hook = set_progress_bar_global_hook
    return utils


class LatentPreviewMethod(enum.Enum):
    NoPreviews = "none"
    Auto = "auto"
    Latent2RGB = "latent2rgb"
    TAESD = "taesd"


def _cli_args() -> types.ModuleType:
    cli = types.ModuleType("comfy.cli_args")
    cli.LatentPreviewMethod = LatentPreviewMethod
    cli.args = types.SimpleNamespace(preview_method=LatentPreviewMethod.NoPreviews, preview_size=512)
    return cli



# ----------------------------------------------------------------------------------- comfy.latent_formats
# Wan's per-channel latent statistics (16 channels: Wan 2.1 VAE, 48: Wan 2.2 VAE), the values ComfyUI 0.8 and later
# hold in `comfy.latent_formats.Wan21` / `Wan22`: set per instance, as tensors [1, C, 1, 1, 1], with scale_factor 1.
WAN21_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
              0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
WAN21_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
             3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)
WAN22_MEAN = (-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557,
              -0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825,
              -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
              -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230,
              -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748,
              0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667)
WAN22_STD = (0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013,
             0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
             0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
             0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
             0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887,
             0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744)


def _latent_format(name: str, mean: tuple[float, ...], std: tuple[float, ...]) -> type:
    channels = len(mean)

    def __init__(self):
        self.scale_factor = 1.0
        self.latents_mean = torch.tensor(mean).view(1, channels, 1, 1, 1)
        self.latents_std = torch.tensor(std).view(1, channels, 1, 1, 1)

    return type(name, (), {"latent_channels": channels, "latent_dimensions": 3, "__init__": __init__})


def _latent_formats() -> types.ModuleType:
    formats = types.ModuleType("comfy.latent_formats")
    formats.Wan21 = _latent_format("Wan21", WAN21_MEAN, WAN21_STD)
    formats.Wan22 = _latent_format("Wan22", WAN22_MEAN, WAN22_STD)
    return formats


# ----------------------------------------------------------------------------------- folder_paths
def _folder_paths(models_dir: Path) -> types.ModuleType:
    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(models_dir)
    fp.supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
    fp.folder_names_and_paths = {
        name: ([str(models_dir / name)], set(fp.supported_pt_extensions))
        for name in ("checkpoints", "vae", "text_encoders", "diffusion_models")
    }

    def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
        if folder_name in fp.folder_names_and_paths:
            paths = fp.folder_names_and_paths[folder_name][0]
            if full_folder_path not in paths:
                paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)
        else:
            fp.folder_names_and_paths[folder_name] = ([full_folder_path], set())

    def get_folder_paths(folder_name: str) -> list[str]:
        return fp.folder_names_and_paths[folder_name][0][:]

    def get_filename_list(folder_name: str) -> list[str]:
        dirs, extensions = fp.folder_names_and_paths[folder_name]  # KeyError for unknown names, as ComfyUI
        out = set()
        for d in dirs:
            for root, _, files in os.walk(d, followlinks=True):
                for f in files:
                    rel = os.path.relpath(os.path.join(root, f), d)
                    if not extensions or os.path.splitext(f)[-1].lower() in extensions:
                        out.add(rel)
        return sorted(out)

    def get_full_path(folder_name: str, filename: str) -> str | None:
        for d in fp.folder_names_and_paths[folder_name][0]:
            full = os.path.join(d, os.path.relpath(os.path.join("/", filename), "/"))
            if os.path.isfile(full):
                return full
        return None

    def get_full_path_or_raise(folder_name: str, filename: str) -> str:
        full = get_full_path(folder_name, filename)
        if full is None:
            raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
        return full

    fp.add_model_folder_path = add_model_folder_path
    fp.get_folder_paths = get_folder_paths
    fp.get_filename_list = get_filename_list
    fp.get_full_path = get_full_path
    fp.get_full_path_or_raise = get_full_path_or_raise
    return fp


# ----------------------------------------------------------------------------------- assembly
def stub_modules(models_dir: Path) -> dict[str, types.ModuleType]:
    """The stand-in modules, keyed by their `sys.modules` names."""
    comfy = types.ModuleType("comfy")
    comfy.__path__ = []
    mm, utils, cli, formats = _model_management(), _utils(), _cli_args(), _latent_formats()
    comfy.model_management, comfy.utils, comfy.cli_args, comfy.latent_formats = mm, utils, cli, formats
    api = types.ModuleType("comfy_api")
    api.__path__ = []
    latest = types.ModuleType("comfy_api.latest")
    latest.__path__ = []
    latest.io = _io_module()
    latest.ComfyExtension = ComfyExtension
    latest.InputImpl = types.SimpleNamespace(VideoFromComponents=VideoFromComponents)
    latest.Types = types.SimpleNamespace(VideoComponents=VideoComponents)
    api.latest = latest
    return {"comfy": comfy, "comfy.model_management": mm, "comfy.utils": utils, "comfy.cli_args": cli,
            "comfy.latent_formats": formats,
            "comfy_api": api, "comfy_api.latest": latest, "comfy_api.latest.io": latest.io,
            "folder_paths": _folder_paths(models_dir)}


def pack_module_name(root: Path) -> str:
    """The module name ComfyUI gives a custom-node directory (`nodes.py:load_custom_node`)."""
    return str(root).replace(".", "_x_")


def load_pack(root: Path, name: str | None = None) -> types.ModuleType:
    """Import `root/__init__.py` as a package, as ComfyUI imports a custom-node directory."""
    name = name or pack_module_name(root)
    spec = importlib.util.spec_from_file_location(name, root / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def hosted_pack(root: Path, models_dir: Path, monkeypatch, threads: int = 1):
    """The stand-in ComfyUI modules in `sys.modules` and the pack at `root` loaded as ComfyUI loads it.

    Yields `(stubs, module)`: the stand-in modules by name, and `module("nodes.x")` importing a pack
    module. On exit the pack's modules are dropped and torch's thread count restored (tests run
    with `threads` threads: the CPU is often shared with a training job).
    """
    name = pack_module_name(root)
    stubs = stub_modules(models_dir)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for key, module in stubs.items():
            monkeypatch.setitem(sys.modules, key, module)
        load_pack(root, name)
        yield stubs, lambda m: importlib.import_module(f"{name}.{m}")
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        torch.set_num_threads(before)
