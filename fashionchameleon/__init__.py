"""FashionChameleon engine: a streaming in-context video DiT with training-free garment switching.

Pure torch (+ safetensors, einops, numpy). Never imports ComfyUI or the node layer, so it runs
from a script, a test, a training job or the nodes alike.
"""
from .config import PRESETS, ModelConfig, StreamConfig, infer_config, preset
from .model import WanDiT
from .rescheduling import SwitchPolicy
from .stream import Cancelled, Chunk, StreamSession

__version__ = "0.1.0"
__all__ = ["PRESETS", "ModelConfig", "StreamConfig", "infer_config", "preset", "WanDiT", "SwitchPolicy",
           "StreamSession", "Chunk", "Cancelled", "__version__"]
