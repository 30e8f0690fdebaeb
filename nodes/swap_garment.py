"""FashionChameleon swap garment: a new stream whose next chunk wears another garment."""
from __future__ import annotations

from comfy_api.latest import io

from .checks import check_slot, require_stream
from .convert import fit_garment, image_to_engine, single_image
from .types import CATEGORY, DEFAULT_POLICY, FC_STREAM, POLICIES, SLOTS

NODE = "FashionChameleon swap garment"


class SwapGarment(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FashionChameleonSwapGarment",
            display_name=NODE,
            category=f"{CATEGORY}/garments",
            description="Switches one garment slot of a stream to a new garment at the stream's next chunk, "
                        "with the paper's training-free KV-cache rescheduling. Returns a new stream; the input "
                        "stream is unchanged, so one stream can branch into several outfits.",
            inputs=[
                FC_STREAM.Input("stream", tooltip="The stream to branch from. It is copied, never changed."),
                io.Image.Input("garment", tooltip="The new garment flat-lay (on white), one image; e.g. from "
                                                  "'FashionChameleon try-off'. Resized and padded with white to "
                                                  "the stream's size."),
                io.Combo.Input("slot", options=list(SLOTS), default="full",
                               tooltip="The slot to replace: 'full' for a one-garment stream, 'upper' or 'lower' "
                                       "for a stream started with two garments."),
                io.Combo.Input("policy", options=list(POLICIES), default=DEFAULT_POLICY,
                               tooltip="How the KV cache is rescheduled at the switch. 'full' (the paper's scheme) "
                                       "refreshes the garment's KV, withdraws the history and rebuilds the "
                                       "reference from the last frame; the others are for comparison."),
            ],
            outputs=[FC_STREAM.Output(display_name="stream",
                                      tooltip="A new stream that switches at its next chunk; connect it to "
                                              "'FashionChameleon stream generate'.")],
        )

    @classmethod
    def execute(cls, stream, garment, slot: str = "full", policy: str = DEFAULT_POLICY) -> io.NodeOutput:
        if policy not in POLICIES:
            raise ValueError(f"policy: unknown policy {policy!r}; choose one of {list(POLICIES)}")
        parent = require_stream(stream, NODE)
        check_slot(slot, parent.slots, "slot")
        image = fit_garment(single_image(image_to_engine(garment, "garment"), "garment"), parent.image_size)
        out = parent.fork()  # checked first: a refused input costs no copy of the cache
        out.session.request_switch(slot, image, POLICIES[policy])
        return io.NodeOutput(out)
