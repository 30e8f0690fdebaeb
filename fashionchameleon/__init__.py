"""FashionChameleon engine: a streaming in-context video DiT with training-free garment switching.

Pure torch (+ safetensors, einops, numpy). Never imports ComfyUI or the node layer, so it runs
from a script, a test, a training job or the nodes alike.

This module is the front door the node layer uses: load a model, open a stream, switch a garment,
drive a running stream live, try a garment off, read and write the pack's files. Behind it:

    runtime/   what a ComfyUI user runs
      config.py     model and stream configs, presets
      dit/          the Wan-layout DiT (model, attention, RoPE, fused ops)
      stream/       the streaming session, KV cache, sampler, rescheduling (the switch), live control
                    (requests and Stop from another thread) and its recorded wardrobe schedule
      encoders/     latent codec and prompt encoder protocols, and the tiny built-in ones
      files/        checkpoints (ours and foreign layouts), media, the pack's bundled paths
      embedded.py   the shipped embedded model; tryoff.py  garment extraction
      rules.py      each input rule once (sizes, slots, a student); nodes translate its error
    lab/       what trains and measures it (never imported by the runtime)
      synthetic/ world, train/ stages, metrics/ eval, bench/, data/ manifests, demo, ship, samples
"""
from .runtime.config import DTYPE_NAMES, PRESETS, ModelConfig, StreamConfig, infer_config, preset
from .runtime.dit.model import WanDiT
from .runtime.embedded import PARTS, EmbeddedModel, load_embedded, trained_stream_config
from .runtime.encoders.codec import latent_frame_count, pixel_frame_count
from .runtime.files.checkpoint import CheckpointError, read_header
from .runtime.files.dit_loading import build_dit
from .runtime.files.images import load_image, to_uint8
from .runtime.files.paths import SAMPLES_DIR, WEIGHTS_DIR
from .runtime.files.resize import fit_pad_white
from .runtime.rules import (SLOTS, InputRuleError, check_image_size, check_slot_names, check_stream_slots,
                            require_student)
from .runtime.stream.live import LiveChunk, LiveControl, LiveRequest
from .runtime.stream.live_schedule import (NAMED_POLICIES, WardrobeSwitch, format_schedule, is_wardrobe_schedule,
                                           parse_schedule, policy_name)
from .runtime.stream.rescheduling import SwitchPolicy
from .runtime.stream.sampler import StepInfo
from .runtime.stream.seeding import MASK64
from .runtime.stream.session import Cancelled, Chunk, StreamSession
from .runtime.tryoff import try_off

__version__ = "0.1.0"
__all__ = ["DTYPE_NAMES", "PRESETS", "ModelConfig", "StreamConfig", "infer_config", "preset", "WanDiT",
           "PARTS", "EmbeddedModel", "load_embedded", "trained_stream_config", "latent_frame_count",
           "pixel_frame_count", "CheckpointError", "build_dit", "read_header", "fit_pad_white", "load_image",
           "to_uint8", "SAMPLES_DIR", "WEIGHTS_DIR", "LiveChunk", "LiveControl", "LiveRequest",
           "NAMED_POLICIES", "WardrobeSwitch", "format_schedule", "is_wardrobe_schedule", "parse_schedule",
           "policy_name", "SwitchPolicy", "StepInfo", "MASK64", "Cancelled", "Chunk",
           "StreamSession", "try_off", "SLOTS", "InputRuleError", "check_image_size", "check_slot_names",
           "check_stream_slots", "require_student", "__version__"]
