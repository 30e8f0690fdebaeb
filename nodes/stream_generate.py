"""FashionChameleon stream generate: start a stream (or continue one) and generate frames chunk by chunk.

Every run is live (live.py): its chunks appear in the node's panel as they are made, Stop ends it
at the next chunk boundary, and a click on a 'wardrobe' garment switches at the next boundary.
"""
from __future__ import annotations

import torch

from comfy_api.latest import io

from . import host, live
from ..fashionchameleon import LiveControl, is_wardrobe_schedule
from .checks import (MAX_SEED, MAX_SIDE, check_int, require_model, require_same_model, require_stream,
                     require_student, rule_input)
from .conditioning import CONDITIONING_PROMPT
from .convert import fit_garment, image_to_engine, single_image, video_to_image
from .fit import check_image_size, stream_fps, stream_parts
from .memory import STREAM_ADVICE, reporting_oom
from .parse import check_slot_names, check_switch_frames, pair_switches, parse_frames, parse_slots, \
    parse_wardrobe_schedule
from .types import CATEGORY, DEFAULT_FPS, FC_MODEL, FC_STREAM, FCStream
from .video import to_video

NODE = "FashionChameleon stream generate"
MAX_FRAMES = 100_000  # per node run; longer videos chain nodes through the 'stream' output
_CHAIN = "continue the stream with another 'FashionChameleon stream generate' (connect its 'stream' output)"


class StreamGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FashionChameleonStreamGenerate",
            display_name=NODE,
            category=f"{CATEGORY}/stream",
            description="Generates a try-on video of the reference person wearing the garment(s), chunk by chunk, "
                        "with a causal few-step model. Outputs the frames, the stream (to continue it, switch "
                        "garments or reschedule the cache), the frame rate and the frames as a VIDEO. Connect 'stream' to continue an "
                        "earlier stream instead of starting a new one; the garment schedule switches garments at "
                        "given frames while generating.",
            inputs=[
                FC_MODEL.Input("model", tooltip="The model from 'Load FashionChameleon model'. When 'stream' is "
                                                "connected, the stream keeps the model it was started with."),
                io.Image.Input("reference", optional=True,
                               tooltip="The person to dress: one image, or a batch of views of the same person "
                                       "(e.g. front and back). Its size is the video size and must be a multiple of "
                                       "the model's unit (16 px for the embedded model). Needed to start a stream; "
                                       "leave it unconnected when continuing one."),
                io.Image.Input("garment", optional=True,
                               tooltip="The garment flat-lay (on white). Alone it fills the 'full' slot; with "
                                       "'garment_lower' it is the 'upper' garment. Resized and padded with white to "
                                       "the reference size. Needed to start a stream."),
                io.Image.Input("garment_lower", optional=True,
                               tooltip="Optional lower-body garment: the stream then has two slots, 'upper' "
                                       "(from 'garment') and 'lower' (from this image)."),
                io.String.Input("prompt", multiline=True, default="a person walks",
                                tooltip="The motion. The embedded model knows simple motion words (walk, turn "
                                        "around, wave, sway, squat, jump, pose, stand still, ...). Ignored when "
                                        "continuing a stream, which keeps its prompt."),
                io.Int.Input("frames", default=48, min=1, max=MAX_FRAMES,
                             tooltip="How many frames this node generates. Rounded up to whole chunks (the model "
                                     "makes its frames one chunk at a time), so that a continuation starts exactly "
                                     "where this output ends. For a longer video, continue the stream with another "
                                     "'FashionChameleon stream generate' (connect its 'stream' output)."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Noise seed of a new stream. A continued stream keeps its own seed, so a "
                                     "continuation repeats exactly."),
                FC_STREAM.Input("stream", optional=True,
                                tooltip="An earlier stream to continue (from this node, 'FashionChameleon swap "
                                        "garment' or 'FashionChameleon KV refresh'). It is copied, never changed."),
                io.Image.Input("schedule_garments", optional=True,
                               tooltip="Garments to switch to while generating, one image per switch, in order. "
                                       "Use with 'switch_frames' (and 'switch_slots' for a two-slot stream)."),
                io.String.Input("switch_frames", optional=True, default="",
                                tooltip="When each scheduled garment takes over, in frames counted from the first "
                                        "frame of this node's output, e.g. '48, 96'. A switch happens at the first "
                                        "chunk boundary at or after its frame; one beyond this output stays pending "
                                        "in the output stream. Or a wardrobe schedule, the 'schedule' output of a "
                                        "live run pasted unchanged ('24:upper:3, 48:lower:1': frame, slot, wardrobe "
                                        "index from 0), which replays that run with the same seed bit for bit; it "
                                        "takes its garments from 'wardrobe', with 'schedule_garments' unconnected "
                                        "and 'switch_slots' empty."),
                io.String.Input("switch_slots", optional=True, default="",
                                tooltip="Which slot each scheduled garment replaces: 'full', 'upper' or 'lower'; "
                                        "one name for all, or one per garment (e.g. 'upper, lower'). Empty means "
                                        "the stream's only slot."),
                io.Vae.Input("vae", optional=True,
                             tooltip="A ComfyUI video VAE, for a real-scale (Wan-layout) DiT from "
                                     "models/diffusion_models: the Wan 2.2 VAE (wan2.2_vae.safetensors, 'Load VAE') "
                                     "for a 48-channel Wan2.2-TI2V-5B-size DiT, the Wan 2.1 VAE for a 16-channel "
                                     "one. Leave it unconnected for the embedded model, which has its own codec. "
                                     "Only used to start a stream."),
                io.Conditioning.Input("conditioning", optional=True,
                                      tooltip="The motion prompt as CONDITIONING, for a real-scale DiT: 'CLIP Text "
                                              "Encode' with the DiT's text encoder (umT5-XXL: 'Load CLIP', type "
                                              "'wan'). When connected, the 'prompt' text is not used. Leave it "
                                              "unconnected for the embedded model. Only used to start a stream."),
                io.Image.Input("wardrobe", optional=True,
                               tooltip="Garments to switch to live, one flat-lay per image (e.g. core's Batch Images "
                                       "of several 'FashionChameleon sample image'). While the node runs they are "
                                       "thumbnails in its panel: click one (or press 1-9) to wear it from the next "
                                       "chunk, in the slot and with the rescheduling policy chosen there. Resized "
                                       "and padded with white to the stream's size."),
                io.String.Input("wardrobe_uploads", optional=True, default="",
                                tooltip="Garments dropped or uploaded into the live panel, as file names in "
                                        "ComfyUI's input folder (fashionchameleon_wardrobe/), comma separated. The "
                                        "panel fills this in; they follow the 'wardrobe' images in the wardrobe."),
            ],
            outputs=[
                io.Image.Output(display_name="frames",
                                tooltip="The generated frames as an IMAGE batch [frames, height, width, 3]."),
                FC_STREAM.Output(display_name="stream",
                                 tooltip="The stream after the last chunk: connect it to continue, swap a garment "
                                         "or refresh the cache. A new value; the input stream is left as it was."),
                io.Float.Output(display_name="fps",
                                tooltip="The video's frame rate, for core's CreateVideo or SaveAnimatedWEBP nodes: 16 "
                                        "for the embedded model, the Wan family's (Wan2.2: 24, Wan2.1: 16) when "
                                        "a VAE is connected."),
                io.Video.Output(display_name="video",
                                tooltip="The same frames as a VIDEO at that frame rate, without audio: connect it to "
                                        "core's 'Save Video' to write an MP4."),
                io.String.Output(display_name="schedule",
                                 tooltip="Every wardrobe switch of this run, live or scheduled, as "
                                         "'frame:slot:index[:policy]' entries (frames from this output's first "
                                         "frame, wardrobe index from 0). Paste it into 'switch_frames' and queue "
                                         "again with the same seed to get the same video bit for bit."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, switch_frames=None, switch_slots=None):
        # ComfyUI shows this text for the whole node: each message starts with the input it is about
        checks = ((switch_frames, check_switch_frames), (switch_slots, check_slot_names))
        for text, check in checks:
            if isinstance(text, str):  # a linked input arrives as None
                try:
                    check(text)
                except ValueError as exc:
                    return str(exc)
        return True

    @classmethod
    def fingerprint_inputs(cls, **inputs):
        # a live run's output depends on the clicks: queueing again after one starts a new live run
        return live.RUNS.changes(getattr(cls.hidden, "unique_id", None))

    @classmethod
    def execute(cls, model, prompt: str, frames: int, seed: int, reference=None, garment=None, garment_lower=None,
                stream=None, schedule_garments=None, switch_frames: str = "", switch_slots: str = "", vae=None,
                conditioning=None, wardrobe=None, wardrobe_uploads: str = "") -> io.NodeOutput:
        require_model(model, NODE)
        frames = check_int(frames, "frames", 1, MAX_FRAMES, f"generate at most {MAX_FRAMES} per node and {_CHAIN}")
        seed = check_int(seed, "seed", 0, MAX_SEED, "use a seed from the widget's range")
        with reporting_oom(NODE, f"generating {frames} frames", STREAM_ADVICE):
            if stream is None:
                out = _start(model, reference, garment, garment_lower, prompt, seed, vae, conditioning)
            else:
                out = _continue(model, stream, reference, garment, garment_lower, vae, conditioning)
            control = LiveControl(out.slots, out.image_size, _wardrobe(out, wardrobe, wardrobe_uploads))
            _schedule(out, schedule_garments, switch_frames, switch_slots, control)
            _check_output_size(out.session, frames)
            session = out.session
            progress = host.StreamProgress(session.codec, host.chunks_for(session, frames), len(session.config.steps))
            device = host.output_device()
            node_id = getattr(cls.hidden, "unique_id", None)
            # each chunk's frames leave the model's device as soon as they are made: [T_chunk, H, W, 3]
            chunks = [video_to_image(c.frames, device) for c in
                      live.stream_live(node_id, control, session, frames, out.fps, progress, host.check_interrupt)]
        progress.finish()
        frames = torch.cat(chunks, dim=0)
        return io.NodeOutput(frames, out, float(out.fps), to_video(frames, out.fps), control.schedule_text)


def _continue(model, stream, reference, garment, garment_lower, vae, conditioning) -> FCStream:
    """A fork of the connected stream (never the stream itself), after checking nothing else is connected."""
    connected = [n for n, v in (("reference", reference), ("garment", garment), ("garment_lower", garment_lower),
                                ("vae", vae), ("conditioning", conditioning)) if v is not None]
    if connected:
        raise ValueError(f"{NODE}: {connected} are only used to start a stream; when 'stream' is connected, "
                         f"disconnect them (a continued stream keeps its images, VAE and text; use "
                         f"'FashionChameleon swap garment' or the garment schedule to change garments)")
    parent = require_stream(stream, NODE)
    require_same_model(parent, model, NODE)
    return parent.fork()


def _check_output_size(session, frames: int) -> None:
    """Refuse a frame count whose IMAGE output (float32, whole chunks) cannot fit in free memory."""
    h, w = session.image_size
    per_chunk = session.codec.pixel_frames(session.config.chunk_frames, first=False)
    need = host.chunks_for(session, frames) * per_chunk * h * w * 3 * 4  # bytes of [T, H, W, 3] float32
    device = host.output_device()
    free = host.free_memory(device)
    if free is not None and need > free:
        raise ValueError(f"frames: {frames} frames of {h}x{w} make a {_size(need)} IMAGE output, more than the "
                         f"{_size(free)} free on {device}; generate fewer frames per node and {_CHAIN}")


def _size(n: int) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1 (e.g. '18.0 KiB')."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _start(model, reference, garment, garment_lower, prompt: str, seed: int, vae=None, conditioning=None) -> FCStream:
    if reference is None or garment is None:
        raise ValueError(f"{NODE}: connect 'reference' and 'garment' to start a stream, or connect 'stream' to "
                         f"continue one")
    student = require_student(model, NODE)
    refs = image_to_engine(reference, "reference", MAX_SIDE)  # [N, 3, H, W]: the views
    size = tuple(refs.shape[-2:])
    first = fit_garment(single_image(image_to_engine(garment, "garment"), "garment"), size)
    if garment_lower is None:
        garments = {"full": first}
    else:
        lower = fit_garment(single_image(image_to_engine(garment_lower, "garment_lower"), "garment_lower"), size)
        garments = {"upper": first, "lower": lower}
    # the model's own codec and prompt encoder, or ComfyUI's VAE / CONDITIONING for a real-scale DiT
    codec, text = stream_parts(model, student.cfg, vae, conditioning, NODE)
    check_image_size(size, codec, student.cfg, NODE)
    if conditioning is not None:
        prompt = CONDITIONING_PROMPT
    session = model.session(refs, garments, prompt, int(seed), codec=codec, prompt_encoder=text)
    return FCStream(session, stream_fps(codec, float(getattr(model, "fps", DEFAULT_FPS))))


def _wardrobe(stream: FCStream, wardrobe, uploads: str | None) -> list:
    """The live wardrobe: the 'wardrobe' images, then the panel's uploads, each `[3, H, W]` at the stream's size."""
    images = [] if wardrobe is None else list(fit_garment(image_to_engine(wardrobe, "wardrobe"), stream.image_size))
    return images + live.load_uploads(uploads, stream.image_size)


def _schedule(stream: FCStream, garments, switch_frames: str | None, switch_slots: str | None,
              control: LiveControl) -> None:
    """Schedule switches on `stream` (a fresh fork owned by this node), frames relative to its current end."""
    if is_wardrobe_schedule(switch_frames):
        _replay(stream, garments, switch_frames, switch_slots, control)
        return
    frames = parse_frames(switch_frames)
    if garments is None:
        if frames:
            raise ValueError(f"switch_frames: {frames} is set but no 'schedule_garments' are connected; connect the "
                             f"garments to switch to, or clear 'switch_frames'")
        return
    images = fit_garment(image_to_engine(garments, "schedule_garments"), stream.image_size)  # [K, 3, H, W]
    if len(frames) != images.shape[0]:
        raise ValueError(f"switch_frames: {images.shape[0]} scheduled garment(s) but {len(frames)} switch frame(s); "
                         f"give one frame per garment")
    slots = parse_slots(switch_slots, len(frames), stream.slots)
    start = stream.frames_generated
    for image, (frame, slot) in zip(images, pair_switches(frames, slots)):
        stream.session.schedule_switch(start + frame, slot, image)


def _replay(stream: FCStream, garments, switch_frames: str, switch_slots: str | None, control: LiveControl) -> None:
    """A wardrobe schedule in 'switch_frames': its garments come from the wardrobe (engine: schedule_ahead)."""
    switches = parse_wardrobe_schedule(switch_frames)
    if garments is not None or (switch_slots or "").strip():
        raise ValueError("switch_frames: a wardrobe schedule names its slots and wardrobe garments itself; "
                         "disconnect 'schedule_garments' and clear 'switch_slots', or give plain frame numbers")
    with rule_input({
        "stream_slot": lambda f: f"switch_frames: the wardrobe schedule names slot(s) {f['unknown']} but this "
                                 f"stream's slots are {list(f['slots'])}; replay it on a stream started like the one "
                                 f"that made it",
        None: lambda f: f"switch_frames: the wardrobe schedule names wardrobe garment {f.get('index')} but the "
                        f"wardrobe holds {f.get('size')} (indices from 0); connect the 'wardrobe' (and keep the "
                        f"'wardrobe_uploads') of the run that made this schedule"}):
        control.schedule_ahead(stream.session, switches)
