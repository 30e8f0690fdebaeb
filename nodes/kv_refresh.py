"""FashionChameleon KV refresh: apply the rescheduling operations at the next chunk, garments unchanged."""
from __future__ import annotations

from comfy_api.latest import io

from ..fashionchameleon import SwitchPolicy
from .checks import check_int, check_slot, require_stream
from .types import CATEGORY, FC_STREAM, SLOTS

NODE = "FashionChameleon KV refresh"
REFRESH = ("all", "none", *SLOTS)
MAX_KEEP = 1024  # the 'keep_last' widget's maximum (the cache keeps at most its window anyway)


class KVRefresh(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FashionChameleonKVRefresh",
            display_name=NODE,
            category=f"{CATEGORY}/stream",
            description="Applies the paper's three KV-cache operations at the stream's next chunk without changing "
                        "a garment: refresh garment KV, withdraw the history (optionally keeping the newest frames "
                        "and the attention sink), and disentangle the reference (rebuild it from the last frame). "
                        "For experiments and for recovering a drifting stream. Returns a new stream; the input "
                        "is unchanged.",
            inputs=[
                FC_STREAM.Input("stream", tooltip="The stream to reschedule. It is copied, never changed."),
                io.Combo.Input("refresh", options=list(REFRESH), default="all",
                               tooltip="Garment slots whose KV is recomputed from the stream's current garment: "
                                       "'all' slots, 'none', or one slot."),
                io.Boolean.Input("withdraw", default=True,
                                 tooltip="Drop the history KV so the next chunk relies on the conditions."),
                io.Int.Input("keep_last", default=0, min=0, max=MAX_KEEP,
                             tooltip="With 'withdraw': how many of the newest latent frames of history to keep "
                                     "(0 drops all, as the authors' prototype does)."),
                io.Boolean.Input("keep_sink", default=False,
                                 tooltip="With 'withdraw': keep the attention-sink frames (the first frames after "
                                         "the stream's start) instead of dropping them."),
                io.Boolean.Input("disentangle", default=True,
                                 tooltip="Rebuild the reference from the last generated frame, re-encoded as a "
                                         "still image, and restart temporal positions after the conditions."),
            ],
            outputs=[FC_STREAM.Output(display_name="stream",
                                      tooltip="A new stream that applies these operations at its next chunk.")],
        )

    @classmethod
    def execute(cls, stream, refresh: str = "all", withdraw: bool = True, keep_last: int = 0, keep_sink: bool = False,
                disentangle: bool = True) -> io.NodeOutput:
        if refresh not in REFRESH:
            raise ValueError(f"refresh: must be one of {list(REFRESH)}, got {refresh!r}")
        keep_last = check_int(keep_last, "keep_last", 0, MAX_KEEP, "0 drops all history, as the paper does")
        parent = require_stream(stream, NODE)
        slots = {"all": parent.slots, "none": ()}.get(refresh, (refresh,))
        for slot in slots:
            check_slot(slot, parent.slots, "refresh")
        policy = SwitchPolicy(refresh=bool(slots), withdraw=bool(withdraw), keep_last=keep_last,
                              keep_sink=bool(keep_sink), disentangle=bool(disentangle))
        out = parent.fork()
        out.session.request_reschedule(policy, tuple(slots))
        return io.NodeOutput(out)
