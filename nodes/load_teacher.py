"""Load FashionChameleon model: the bundled embedded model, or a DiT checkpoint from the model folders."""
from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io

from .. import fashionchameleon as fc
from ..fashionchameleon import CheckpointError, build_dit, read_header
from . import folders, host
from .cache_size import sized_model
from .memory import LOAD_ADVICE, reporting_oom
from .types import CATEGORY, FC_MODEL, log

NODE = "Load FashionChameleon model"
_DIT_STAGES = ("student", "teacher", "tryoff")


class LoadTeacher(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FashionChameleonLoadTeacher",
            display_name=NODE,
            category=f"{CATEGORY}/loaders",
            description="Loads the FashionChameleon model: the small embedded model bundled with the pack "
                        "(codec, prompt encoder, causal student, teacher, try-off), or a DiT checkpoint from "
                        "models/fashionchameleon or models/diffusion_models, paired with the embedded codec and "
                        "prompt encoder. A real-scale Wan-layout DiT (e.g. Wan2.2-TI2V-5B size) streams with a "
                        "ComfyUI VAE and CONDITIONING connected to 'FashionChameleon stream generate'. The device "
                        "and dtype are chosen when the node runs.",
            inputs=[
                io.Combo.Input("model", options=folders.model_choices(), default=folders.EMBEDDED,
                               tooltip="'embedded (bundled)' is the pack's own model (weights/ in the pack). Other "
                                       "entries are .safetensors files in models/fashionchameleon or "
                                       "models/diffusion_models: a student, teacher or try-off DiT trained by this "
                                       "pack, or a Wan-layout DiT of any size (a real-scale one needs a VAE and "
                                       "CONDITIONING connected to the stream node)."),
                io.Combo.Input("dtype", options=list(host.DTYPES), default="auto",
                               tooltip="Precision of the DiT weights. 'auto' lets ComfyUI choose for the device "
                                       "(bf16 where supported, else fp32). The codec and prompt encoder stay fp32."),
                io.Combo.Input("device", options=list(host.DEVICES), default="auto",
                               tooltip="'auto' runs on ComfyUI's device (the GPU unless ComfyUI was started with "
                                       "--cpu); 'cpu' keeps this small model off the GPU."),
            ],
            outputs=[FC_MODEL.Output(display_name="model",
                                     tooltip="The loaded model, for 'FashionChameleon stream generate' and "
                                             "'FashionChameleon try-off'.")],
        )

    @classmethod
    def fingerprint_inputs(cls, model: str, dtype: str = "auto", device: str = "auto"):
        """Re-load when a weight file changes on disk (e.g. a training run writes new embedded weights)."""
        try:
            path = folders.resolve(model)
        except (ValueError, FileNotFoundError):
            return model  # execute() reports the problem
        root = Path(fc.WEIGHTS_DIR)
        files = [root / name for name in fc.PARTS.values()] + ([] if path is None else [path])
        stamps = [(str(f), st.st_ino, st.st_mtime_ns, st.st_size) for f in files if f.is_file() for st in [f.stat()]]
        return (model, dtype, device, tuple(stamps))

    @classmethod
    def execute(cls, model: str, dtype: str = "auto", device: str = "auto") -> io.NodeOutput:
        dev = host.pick_device(device)
        dt = host.pick_dtype(dtype, dev)
        path = folders.resolve(model)
        with reporting_oom(NODE, f"loading {model} on {dev} as {str(dt).replace('torch.', '')}", LOAD_ADVICE):
            loaded = _load_embedded(dev, dt) if path is None else _load_file(path, dev, dt)
        log.info("loaded %s on %s as %s", model, dev, dt)
        return io.NodeOutput(sized_model(loaded))


def _load_embedded(device, dtype, parts: tuple[str, ...] = tuple(fc.PARTS)):
    root = Path(fc.WEIGHTS_DIR)
    try:
        return fc.load_embedded(root, device=device, dtype=dtype, parts=parts)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"the embedded FashionChameleon model is not available: {exc}. Searched the "
                                f"pack's weights folder {root}; or choose a checkpoint from the model folders "
                                f"({folders.searched()})") from None
    except CheckpointError as exc:
        raise CheckpointError(f"the embedded FashionChameleon model in {root} is damaged: {exc} Reinstall the pack "
                              f"(or re-ship that part: python -m fashionchameleon ship)") from None


def _load_file(path: Path, device, dtype):
    """A DiT file, paired with the embedded codec and prompt encoder."""
    meta = read_header(path).get("__metadata__", {})
    stage = meta.get("fc_stage", "unknown")
    if stage not in (*_DIT_STAGES, "unknown"):
        raise CheckpointError(f"{path}: stage {stage!r} found, but this loader takes a DiT ({' / '.join(_DIT_STAGES)}"
                              f", or a Wan-layout file without FashionChameleon metadata). Searched "
                              f"{folders.searched()}")
    base = _load_embedded(device, dtype, parts=())  # codec + prompt encoder only
    dit = build_dit(path, expect_stage=_DIT_STAGES, dtype=dtype, device=device).requires_grad_(False)
    cfg = dit.cfg
    if cfg.in_dim != base.codec.latent_channels or cfg.text_dim != base.text.text_dim:
        log.info("%s (%s) takes %d-channel latents and %d-wide text features, not the embedded codec's %d and "
                 "prompt encoder's %d: connect a VAE and a CONDITIONING to 'FashionChameleon stream generate' "
                 "(its 'vae' and 'conditioning' inputs)", path, stage, cfg.in_dim, cfg.text_dim,
                 base.codec.latent_channels, base.text.text_dim)
    role = "student" if stage == "unknown" else stage
    setattr(base, role, dit)
    if role == "student":  # stream with the context the student was trained on, when its file says
        base.stream_config = fc.trained_stream_config(meta, path) or base.stream_config
    return base
