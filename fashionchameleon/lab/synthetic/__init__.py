"""A procedural fashion world: people, garments, motions and backgrounds rendered on the fly.

The training and evaluation data of the embedded tiny try-on model (docs/design.md §4):
triplets of (reference, garment flat-lay, video) whose reference is the first frame re-dressed
in a different garment of the same kind, with ground-truth masks, splits by seed range, and one
texture family held out of training. Everything is parametrised by the frame size and is
deterministic given a seed. The framing (`camera.FRAMINGS`) sets the camera and frame size:
"full_body" (the default: a fixed camera, square S x S frames) or "fashion" (a portrait 112 x 144
frame whose camera follows the person, who fills it from the crown to the knees).

    sample = make_sample(seed, WorldConfig(size=128, frames=48))
    sample.video        # [T, 3, H, W] in [-1, 1]; (H, W) = WorldConfig.frame_size
    sample.references   # [V, 3, H, W] in [-1, 1]
    sample.garments     # {"full": [3, H, W]} or {"upper": .., "lower": ..} in [-1, 1]
    make_sample(seed, WorldConfig(framing="fashion", frames=48)).video  # [48, 3, 144, 112]
"""
from .background import BACKGROUND_STYLES, BackgroundSpec, render_background, sample_background, sample_background_spec
from .camera import FRAMINGS, Camera, Framing, follow_camera
from .from_image import garment_from_image, guess_shape, outfit_from_image, segment_garment
from .garments import Garment, coarsened, flat_lay, garment_atlas, garments_differ, laid_out, outfit_flat_lay, \
    restyle, sample_garment
from .motion import FPS, JOINTS, MOTION_NAMES, MOTIONS, MotionParams, MotionSpec, Pose, motion_prompt, pose_clip, \
    sample_motion
from .people import HAIR_STYLES, BodyDims, Person, sample_person
from .render import LABELS, Clip, FaceStyle, masks_from_labels, render_clip, render_pose
from .templates import LOWER_SHAPES, TEMPLATES, UPPER_SHAPES
from .textures import (HELD_OUT_FAMILY, TEXTURE_FAMILIES, TRAIN_FAMILIES, Checks, ColourBlocks, Dots, ImageTexture,
                       Logo, Solid, Stripes, render_texture, sample_texture, scale_pattern)
from .world import SLOT_LAYOUTS, SPLITS, Sample, SamplePlan, WorldConfig, iterate, make_sample, plan_sample, \
    render_plan, render_with, split_of

__all__ = [
    # dataset API
    "WorldConfig", "Sample", "SamplePlan", "SPLITS", "SLOT_LAYOUTS", "split_of", "make_sample", "plan_sample",
    "render_plan", "render_with", "iterate",
    # framings and cameras
    "FRAMINGS", "Framing", "Camera", "follow_camera", "FaceStyle",
    # garments and textures
    "Garment", "flat_lay", "outfit_flat_lay", "laid_out", "garment_atlas", "sample_garment", "garments_differ", "restyle",
    "coarsened", "scale_pattern",
    "garment_from_image", "outfit_from_image", "segment_garment", "guess_shape", "UPPER_SHAPES", "LOWER_SHAPES",
    "TEMPLATES", "TEXTURE_FAMILIES", "TRAIN_FAMILIES", "HELD_OUT_FAMILY", "Solid", "Stripes", "Checks", "Dots",
    "ColourBlocks", "Logo", "ImageTexture", "render_texture", "sample_texture",
    # people, motion, backgrounds, rendering
    "Person", "BodyDims", "HAIR_STYLES", "sample_person", "MotionParams", "MotionSpec", "MOTIONS", "MOTION_NAMES",
    "JOINTS", "FPS", "Pose", "pose_clip", "sample_motion", "motion_prompt", "BackgroundSpec", "BACKGROUND_STYLES",
    "sample_background", "sample_background_spec", "render_background", "Clip", "render_clip", "render_pose",
    "LABELS", "masks_from_labels",
]
