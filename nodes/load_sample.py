"""FashionChameleon sample image: one of the pack's bundled sample images (`workflows/samples/`) as an IMAGE.

Core's LoadImage lists only ComfyUI's `input/` folder, so the example workflows load their inputs
through this node and run as soon as the pack is installed.
"""
from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io

from ..fashionchameleon import load_image, SAMPLES_DIR
from . import host
from .convert import engine_to_image
from .types import CATEGORY

NODE = "FashionChameleon sample image"
DEFAULT = "reference.png"


def sample_names() -> list[str]:
    """The PNG files in the samples folder, sorted (the combo's options; read on every schema request)."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def sample_path(name: str) -> Path:
    """A combo value -> its file; only the PNG files listed by `sample_names()` are accepted."""
    names = sample_names()
    if name not in names:
        raise FileNotFoundError(f"{NODE}: {name!r} is not one of the bundled samples in {SAMPLES_DIR} "
                                f"({names or 'the folder is missing: reinstall the pack'})")
    return SAMPLES_DIR / name


class LoadSample(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        names = sample_names()
        return io.Schema(
            node_id="FashionChameleonLoadSample",
            display_name=NODE,
            category=f"{CATEGORY}/inputs",
            description="Loads one of the sample images bundled with the pack (a held-out person, a back view, "
                        "three outfits of flat-lay garments and a dressed person for try-off), so that the example "
                        "workflows run without copying files into ComfyUI's input folder. For your own images use "
                        "core's Load Image node.",
            inputs=[
                io.Combo.Input("image", options=names, default=DEFAULT if DEFAULT in names else None,
                               tooltip="A bundled sample from the pack's workflows/samples folder: reference.png "
                                       "(the person), reference_back.png (a back view), garment<N>_upper/lower.png "
                                       "(flat-lays of outfit N), tryoff_person.png (someone to take a garment off)."),
            ],
            outputs=[io.Image.Output(display_name="image",
                                     tooltip="The sample as an IMAGE [1, height, width, 3] in 0..1 (RGB), "
                                             "112 x 144 px (width x height) for the bundled samples.")],
        )

    @classmethod
    def fingerprint_inputs(cls, image: str):
        """Re-read the file when it changes on disk."""
        try:
            st = sample_path(image).stat()
        except FileNotFoundError:
            return image  # execute() reports the problem
        return (image, st.st_mtime_ns, st.st_size)

    @classmethod
    def execute(cls, image: str) -> io.NodeOutput:
        picture = load_image(sample_path(image))  # [3, H, W] in [-1, 1]
        return io.NodeOutput(engine_to_image(picture[None], host.output_device()))  # [1, H, W, 3] in 0..1
