"""FashionChameleon try-off: the flat garment a dressed person is wearing."""
from __future__ import annotations

from comfy_api.latest import io

from ..fashionchameleon import check_image_size, check_slot_names, try_off
from . import host
from .checks import MAX_SEED, MAX_SIDE, check_int, require_model, rule_input
from .convert import engine_to_image, image_to_engine
from .fit import check_codec_fit
from .memory import TRYOFF_ADVICE, reporting_oom
from .types import CATEGORY, FC_MODEL, SLOTS
from .vae_codec import ComfyVAECodec

NODE = "FashionChameleon try-off"
MAX_STEPS = 200


class TryOff(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FashionChameleonTryOff",
            display_name=NODE,
            category=f"{CATEGORY}/garments",
            description="Takes a garment off a photo: from a dressed person, generates the flat-lay of the garment "
                        "in the chosen slot, ready for 'FashionChameleon swap garment' or as a stream's garment.",
            inputs=[
                FC_MODEL.Input("model", tooltip="The model from 'Load FashionChameleon model'; it needs its try-off "
                                                "DiT (tryoff.safetensors for the embedded model)."),
                io.Image.Input("person", tooltip="Photo(s) of a dressed person; each image in a batch gives one "
                                                 "garment. Width and height must be multiples of the model's unit "
                                                 "(16 px for the embedded model)."),
                io.Combo.Input("slot", options=list(SLOTS), default="full",
                               tooltip="Which garment to take off: the whole outfit ('full'), the top ('upper') or "
                                       "the bottom ('lower')."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Noise seed; the same seed gives the same garment."),
                io.Int.Input("steps", default=30, min=1, max=MAX_STEPS,
                             tooltip="Denoising steps of the try-off sampler."),
                io.Vae.Input("vae", optional=True,
                             tooltip="A ComfyUI video VAE for a real-scale (Wan-layout) try-off DiT: the Wan 2.2 "
                                     "VAE for a 48-channel DiT, the Wan 2.1 VAE for a 16-channel one. Leave it "
                                     "unconnected for the embedded model, which has its own codec."),
            ],
            outputs=[io.Image.Output(display_name="garment",
                                     tooltip="The flat garment image(s) on white, at the person's size.")],
        )

    @classmethod
    def execute(cls, model, person, slot: str = "full", seed: int = 0, steps: int = 30, vae=None) -> io.NodeOutput:
        require_model(model, NODE)
        with rule_input(lambda f: f"slot: unknown garment slot {slot!r}; choose one of {list(f['slots'])}"):
            check_slot_names((slot,))
        seed = check_int(seed, "seed", 0, MAX_SEED, "use a seed from the widget's range")
        steps = check_int(steps, "steps", 1, MAX_STEPS, "about 30 steps is the usual choice")
        if model.tryoff is None:
            raise ValueError(f"{NODE}: this model has no try-off DiT; load the embedded model with its "
                             f"tryoff.safetensors, or a try-off checkpoint")
        codec = ComfyVAECodec(vae) if vae is not None else model.codec
        check_codec_fit(codec, model.tryoff.cfg, vae is not None, NODE)
        images = image_to_engine(person, "person", MAX_SIDE)  # [B, 3, H, W]
        h, w = images.shape[-2:]
        with rule_input(lambda f: f"person: the image is {h}x{w}; width and height must be multiples of {f['unit']} "
                                  f"for this model (resize or crop it first)"):
            check_image_size((h, w), codec, model.tryoff.cfg)
        set_progress = host.simple_progress(steps)
        host.check_interrupt()

        def on_step(step: int, x0) -> None:  # progress, and cancel within one step
            set_progress(step + 1)
            host.check_interrupt()

        with reporting_oom(NODE, f"taking garments off {images.shape[0]} image(s) of {h}x{w}", TRYOFF_ADVICE):
            garment = try_off(model.tryoff, codec, images, slot, seed, steps, on_step=on_step)
        return io.NodeOutput(engine_to_image(garment, host.output_device()))
