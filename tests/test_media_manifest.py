"""Media I/O (images, videos, contact sheets, the two resizes) and the CSV training manifest."""
from __future__ import annotations

import csv
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionchameleon.runtime.files import optional_deps
from fashionchameleon.lab.contact_sheet import render_contact_sheet, save_contact_sheet
from fashionchameleon.lab.data import (ManifestConfig, ManifestDataset, ManifestError, caption_order, parse_prompt,
                                   stack_samples)
from fashionchameleon.runtime.files.images import MediaError, from_uint8, load_image, save_png, to_uint8
from fashionchameleon.runtime.files.optional_deps import MissingDependency
from fashionchameleon.runtime.files.resize import fit_pad_white, resize_cover_crop
from fashionchameleon.runtime.files.video_read import read_video
from fashionchameleon.runtime.files.video_write import save_video

try:
    importlib.import_module("PIL.Image")
    HAS_PIL = True
except ImportError:
    HAS_PIL = False
needs_pil = pytest.mark.skipif(not HAS_PIL, reason="Pillow is not installed: pip install pillow")

STEP = 2.0 / 255.0  # one uint8 level in [-1, 1]
RED = torch.tensor([1.0, -1.0, -1.0])[:, None, None]
BLUE = torch.tensor([-1.0, -1.0, 1.0])[:, None, None]
MP4 = [b for b in optional_deps.video_backends() if b != "gif"]


def _clip(t: int = 12, h: int = 40, w: int = 64) -> torch.Tensor:
    """A smooth clip [T, 3, H, W] in [-1, 1]: a gradient background and a square moving right."""
    ys, xs = torch.linspace(-1, 1, h)[:, None], torch.linspace(-1, 1, w)[None, :]
    frames = []
    for i in range(t):
        f = torch.stack([xs.expand(h, w), ys.expand(h, w), torch.full((h, w), -0.5)])  # [3, H, W]
        x0 = 4 + 3 * i
        f[:, 12:28, x0:x0 + 16] = RED
        frames.append(f)
    return torch.stack(frames)


# ----------------------------------------------------------------------------- images
@needs_pil
def test_png_round_trip_is_within_one_level(tmp_path):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 17, 23, generator=g) * 2 - 1
    back = load_image(save_png(tmp_path / "sub" / "a.png", img))
    assert back.shape == (3, 17, 23) and back.dtype == torch.float32
    assert (back - img).abs().max() <= STEP / 2 + 1e-6  # rounding to the nearest level: half a level
    exact = from_uint8(torch.randint(0, 256, (9, 11, 3), dtype=torch.uint8, generator=g))
    assert torch.equal(load_image(save_png(tmp_path / "b.png", exact)), exact)
    hwc = to_uint8(exact)  # [H, W, 3] uint8 is accepted as is
    assert torch.equal(load_image(save_png(tmp_path / "c.png", hwc)), exact)
    assert back.min() >= -1 and back.max() <= 1


@needs_pil
def test_rgba_is_composited_on_white_and_grayscale_expanded(tmp_path):
    from PIL import Image

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[:, :2] = (255, 0, 0, 255)  # opaque red
    rgba[:, 2:4] = (0, 0, 0, 0)  # transparent
    rgba[:, 4:] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert torch.allclose(img[:, :, :2], RED.expand(3, 4, 2))
    assert torch.allclose(img[:, :, 2:4], torch.ones(3, 4, 2))
    assert img[:, :, 4:].abs().max() < 0.02

    grey = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    g = load_image(tmp_path / "g.png")
    assert g.shape == (3, 4, 6)
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    assert torch.allclose(g[0], torch.from_numpy(grey).float() / 127.5 - 1)

    deep = (np.arange(24, dtype=np.uint16).reshape(4, 6) * 2000)  # 16-bit grey, up to 46000 of 65535
    Image.fromarray(deep).save(tmp_path / "d.png")
    d = load_image(tmp_path / "d.png")
    assert d.shape == (3, 4, 6)
    assert abs(d[0, -1, -1].item() - (46000 / 65535 * 2 - 1)) < STEP


@needs_pil
def test_missing_files_and_missing_pillow_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(MediaError, match="bad.png"):
        load_image(tmp_path / "bad.png")
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now raises ImportError
    with pytest.raises(MissingDependency, match="pip install pillow"):
        load_image(tmp_path / "bad.png")
    assert issubclass(MissingDependency, ImportError)


# ----------------------------------------------------------------------------- resizing
def test_resize_cover_crop_fills_the_target_and_keeps_the_centre():
    img = torch.cat([RED.expand(3, 40, 40), BLUE.expand(3, 40, 40)], dim=2)  # [3, 40, 80]: red | blue
    out = resize_cover_crop(img, 32, 32)
    assert out.shape == (3, 32, 32)
    # scaled to 32 x 64, the centre 32 columns are 16 red then 16 blue
    assert torch.allclose(out[:, :, :15], RED.expand(3, 32, 15), atol=1e-5)
    assert torch.allclose(out[:, :, 17:], BLUE.expand(3, 32, 15), atol=1e-5)
    video = img[None].repeat(5, 1, 1, 1)  # [T, 3, 40, 80]
    assert torch.allclose(resize_cover_crop(video, 32, 32), out[None].expand(5, -1, -1, -1))
    tall = resize_cover_crop(torch.zeros(3, 720, 1280), 128, 128)  # 720 * 128/720 must not round below 128
    assert tall.shape == (3, 128, 128)
    assert resize_cover_crop(torch.zeros(3, 7, 5), 30, 20).shape == (3, 30, 20)  # upscaling too


def test_fit_pad_white_keeps_aspect_and_pads_with_white():
    img = torch.ones(3, 40, 80)  # white, wide
    img[:, 10:30, 30:50] = RED  # a 20 x 20 red square in the middle
    out = fit_pad_white(img, 64, 64)
    assert out.shape == (3, 64, 64)
    assert torch.equal(out[:, :16], torch.ones(3, 16, 64)) and torch.equal(out[:, 48:], torch.ones(3, 16, 64))
    red = (out[0] > 0.5) & (out[1] < -0.5)  # [64, 64]
    ys, xs = torch.nonzero(red, as_tuple=True)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert abs(int(height) - int(width)) <= 1 and 14 <= int(height) <= 18  # 20 * 0.8 = 16, still square
    assert abs((ys.min() + ys.max()).item() / 2 - 31.5) <= 1 and abs((xs.min() + xs.max()).item() / 2 - 31.5) <= 1
    tall = fit_pad_white(torch.zeros(2, 3, 80, 40), 32, 32)  # frames too; padding left and right
    assert tall.shape == (2, 3, 32, 32)
    assert torch.equal(tall[:, :, :, :8], torch.ones(2, 3, 32, 8)) and tall[:, :, :, 8:24].abs().max() < 1e-6
    with pytest.raises(TypeError, match="from_uint8"):
        fit_pad_white(torch.zeros(3, 4, 4, dtype=torch.uint8), 8, 8)


# ----------------------------------------------------------------------------- contact sheets
@needs_pil
def test_contact_sheet_size_marks_and_labels(tmp_path):
    from PIL import Image

    h, w = 16, 20
    frame = lambda v: torch.full((3, h, w), v)  # noqa: E731
    rows = [[frame(-1.0), frame(0.0), frame(-1.0)], [frame(-1.0), frame(-1.0)]]  # second row is short
    sheet = render_contact_sheet(rows, marked={(1, 1)})
    assert sheet.shape == (2 * h, 3 * w, 3) and sheet.dtype == np.uint8
    cell = sheet[h:2 * h, w:2 * w]  # row 1, column 1
    for edge in (cell[0], cell[-1], cell[:, 0], cell[:, -1]):
        assert (edge == (255, 0, 0)).all()
    assert (cell[4:-4, 4:-4] == 0).all()  # inside the border the frame is untouched
    assert (sheet[0, 0] == 0).all() and (sheet[h, 0] == 0).all()  # unmarked cells keep their corners
    assert (sheet[h:, 2 * w:] == 255).all()  # the missing cell is white
    assert (sheet[:h, w:2 * w] == 128).all()  # 0.0 -> grey 128

    labelled = render_contact_sheet(rows, labels=["teacher", "student"], marked=[(0, 2)], gap=2, label_height=12)
    assert labelled.shape == (2 * (h + 12) + 2, 3 * w + 2 * 2, 3)
    strip = labelled[:12]
    assert (strip < 128).any() and (strip == 255).mean() > 0.5  # dark text on a white strip
    assert (labelled[12, 2 * (w + 2)] == (255, 0, 0)).all()  # marked cell (0, 2) starts below its strip

    small = torch.zeros(3, 8, 20)  # another size is fitted into the cell on white
    mixed = render_contact_sheet([[frame(-1.0), small]])
    assert mixed.shape == (h, 2 * w, 3) and (mixed[0, w:] == 255).all() and (mixed[8, w:] == 128).all()

    path = save_contact_sheet(tmp_path / "sheet.png", rows, labels=["a", "b"], marked={(0, 0)})
    with Image.open(path) as img:
        assert img.size == (3 * w, 2 * (h + 14))
    with pytest.raises(ValueError, match="outside"):
        render_contact_sheet(rows, marked={(2, 0)})
    with pytest.raises(ValueError, match="one label per row"):
        render_contact_sheet(rows, labels=["only one"])


# ----------------------------------------------------------------------------- videos
@needs_pil
@pytest.mark.parametrize("backend", ["auto", "gif"] + MP4)
def test_save_video_then_read_video(tmp_path, backend):
    clip = _clip(12, 64, 64)
    path = save_video(tmp_path / "out.mp4", clip, fps=16, backend=backend)
    expect_mp4 = backend in MP4 or (backend == "auto" and MP4)
    assert path.suffix == (".mp4" if expect_mp4 else ".gif") and path.is_file()
    frames, fps = read_video(path)
    assert frames.shape == (12, 3, 64, 64) and fps == pytest.approx(16.0)
    assert frames.min() >= -1 and frames.max() <= 1
    assert (frames - clip).abs().mean() < 0.08  # lossy (H.264 4:2:0 or a 256-colour palette), but the same clip
    first, _ = read_video(path, max_frames=5)
    assert first.shape == (5, 3, 64, 64) and torch.allclose(first, frames[:5])


@needs_pil
@pytest.mark.parametrize("backend", MP4)
def test_mp4_readers_agree_and_odd_sizes_are_padded(tmp_path, backend):
    path = save_video(tmp_path / "odd.mp4", _clip(4, 63, 65), fps=24, backend=backend)
    for reader in MP4:
        frames, fps = read_video(path, backend=reader)
        assert frames.shape == (4, 3, 64, 66) and fps == pytest.approx(24.0)  # padded to even sizes
    tiny, _ = read_video(save_video(tmp_path / "tiny.mp4", torch.zeros(2, 3, 2, 2), backend=backend))
    assert tiny.shape == (2, 3, 2, 2)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(MediaError, match=f"junk.mp4 as a video with {backend}"):
        read_video(tmp_path / "junk.mp4", backend=backend)


@needs_pil
def test_gif_keeps_frame_count_with_identical_frames(tmp_path):
    clip = _clip(9, 16, 24)
    clip[1:5] = clip[0]  # Pillow merges identical consecutive GIF frames; read_video restores them
    path = save_video(tmp_path / "still.gif", clip, fps=12.5)
    frames, fps = read_video(path)
    assert path.suffix == ".gif" and frames.shape == (9, 3, 16, 24) and fps == pytest.approx(12.5)
    assert torch.equal(frames[3], frames[0]) and not torch.equal(frames[5], frames[0])
    assert read_video(path, max_frames=3)[0].shape[0] == 3


@needs_pil
def test_without_ffmpeg_or_av_mp4_becomes_gif(tmp_path, monkeypatch):
    monkeypatch.setattr(optional_deps, "find_imageio_ffmpeg", lambda: None)
    monkeypatch.setattr(optional_deps, "find_av", lambda: None)
    assert optional_deps.video_backends() == ("gif",)
    path = save_video(tmp_path / "demo.mp4", _clip(3, 8, 8), fps=8)
    assert path == tmp_path / "demo.gif" and path.is_file()
    assert read_video(path)[0].shape == (3, 3, 8, 8)
    with pytest.raises(MissingDependency, match="pip install imageio-ffmpeg"):
        save_video(tmp_path / "x.mp4", _clip(2, 8, 8), backend="imageio-ffmpeg")
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 64)
    with pytest.raises(MissingDependency, match="pip install imageio-ffmpeg"):
        read_video(tmp_path / "clip.mp4")


@needs_pil
def test_read_video_of_a_png_directory(tmp_path):
    clip = _clip(11, 20, 24)
    for i, f in enumerate(clip):  # unpadded numbers: natural order puts f2 before f10
        save_png(tmp_path / "frames" / f"f{i}.png", f)
    (tmp_path / "frames" / "notes.txt").write_text("ignored")
    frames, fps = read_video(tmp_path / "frames", default_fps=10)
    assert frames.shape == (11, 3, 20, 24) and fps == 10
    assert (frames - clip).abs().max() <= STEP / 2 + 1e-6
    assert read_video(tmp_path / "frames", max_frames=4)[0].shape[0] == 4
    save_png(tmp_path / "frames" / "f99.png", torch.zeros(3, 10, 10))
    with pytest.raises(MediaError, match="f99.png"):
        read_video(tmp_path / "frames")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="without image files"):
        read_video(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="absent"):
        read_video(tmp_path / "absent.mp4")


# ----------------------------------------------------------------------------- manifest
OFFICIAL_PROMPT = {
    "cn_long": ["一名女子面向镜头走来。", "室内背景，光线明亮。"],
    "cn_short": ["女子走来。", "室内。"],
    "en_long": ["A woman walks toward the camera.", "Indoor setting with bright light."],
    "en_short": ["A woman walks.", "Indoor."],
}


def _write_csv(path: Path, rows: list[dict], columns=("video", "prompt", "width", "height")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in columns})
    return path


def _flat_lay(colour: torch.Tensor, h: int = 30, w: int = 60) -> torch.Tensor:
    img = torch.ones(3, h, w)
    img[:, 5:25, 20:40] = colour
    return img


def _tiny_dataset(root: Path) -> Path:
    """clip0/: 12 PNG frames (full slot); clip1.gif: 12 frames, upper+lower; one official JSON prompt."""
    data = root / "data"
    clip = _clip(12, 40, 64)
    for i, f in enumerate(clip):
        save_png(data / "clip0" / f"{i:04d}.png", f)
    save_png(data / "clip0_src.png", clip[0].flip(0))
    save_png(data / "clip0_cloth.png", _flat_lay(RED))
    save_video(data / "clip1.gif", clip, fps=16)
    save_png(data / "clip1_src.png", clip[0])
    save_png(data / "clip1_cloth_upper.png", _flat_lay(RED))
    save_png(data / "clip1_cloth_lower.png", _flat_lay(BLUE))
    rows = [{"video": "clip0", "prompt": json.dumps(OFFICIAL_PROMPT, ensure_ascii=False), "width": 64, "height": 40},
            {"video": "./clip1.gif", "prompt": "a person waves", "slot": "upper+lower"}]
    return _write_csv(data / "meta_train.csv", rows, columns=("video", "prompt", "width", "height", "slot"))


@needs_pil
def test_manifest_loads_official_layout(tmp_path):
    csv_path = _tiny_dataset(tmp_path)
    ds = ManifestDataset(ManifestConfig(csv_path, size=(32, 48), frames=8))
    assert len(ds) == 2 and [r.slots for r in ds.rows] == [("full",), ("upper", "lower")]
    a, b = ds[0], ds[1]
    assert a.video.shape == (8, 3, 32, 48) and a.references.shape == (1, 3, 32, 48)
    assert list(a.garments) == ["full"] and a.garments["full"].shape == (3, 32, 48)
    assert a.prompt == "A woman walks toward the camera. Indoor setting with bright light."
    assert b.prompt == "a person waves" and list(b.garments) == ["upper", "lower"]
    for s in (a, b):
        for t in [s.video, s.references, *s.garments.values()]:
            assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    expected = resize_cover_crop(_clip(8, 40, 64), 32, 48)  # frames: cover + centre crop
    assert (a.video - expected).abs().max() < 2 * STEP
    assert (b.video - expected).abs().mean() < 0.08  # the GIF clip, palette-quantised
    # flat-lays are fitted and padded with white: 30x60 -> 24x48 at rows 4..27
    assert torch.equal(a.garments["full"][:, :4], torch.ones(3, 4, 48))
    assert a.garments["full"][0, 16, 24] > 0.9 and a.garments["full"][2, 16, 24] < -0.9  # red centre
    assert b.garments["lower"][2, 16, 24] > 0.9 and b.garments["lower"][0, 16, 24] < -0.9  # blue centre
    assert len(list(ds)) == 2  # iteration stops (IndexError past the end)
    assert ds[-1].source == b.source
    assert ManifestDataset(ManifestConfig(csv_path, size=(32, 48), frames=8, caption="cn_short"))[0].prompt \
        == "女子走来。 室内。"


@needs_pil
def test_manifest_batches_by_layout(tmp_path):
    ds = ManifestDataset(ManifestConfig(_tiny_dataset(tmp_path), size=(16, 16), frames=4))
    assert ds.layouts() == {("full",): [0], ("upper", "lower"): [1]}
    batch = stack_samples([ds[0], ds[0]])
    assert batch.video.shape == (2, 4, 3, 16, 16) and batch.references.shape == (2, 1, 3, 16, 16)
    assert batch.garments["full"].shape == (2, 3, 16, 16) and len(batch.prompts) == 2
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, [1, 1]), batch_size=2, collate_fn=stack_samples)
    assert next(iter(loader)).slots == ("upper", "lower")
    with pytest.raises(ManifestError, match="layouts"):
        stack_samples([ds[0], ds[1]])


@needs_pil
def test_manifest_missing_cloth_names_the_file(tmp_path):
    csv_path = _tiny_dataset(tmp_path)
    (tmp_path / "data" / "clip0_cloth.png").unlink()
    (tmp_path / "data" / "clip1_cloth_lower.png").unlink()
    with pytest.raises(ManifestError) as err:
        ManifestDataset(ManifestConfig(csv_path, frames=8))
    msg = str(err.value)
    assert "clip0_cloth.png" in msg and "line 2" in msg and "clip1_cloth_lower.png" in msg and "line 3" in msg
    assert "2 missing file(s)" in msg and "ManifestConfig.root" in msg


@needs_pil
def test_manifest_short_video_names_its_length(tmp_path):
    ds = ManifestDataset(ManifestConfig(_tiny_dataset(tmp_path), size=(16, 16), frames=20))
    with pytest.raises(ManifestError, match=r"clip0 has only 12 frames .*frames=20"):
        ds[0]


@needs_pil
def test_manifest_paths_relative_to_cwd_or_root(tmp_path, monkeypatch):
    _tiny_dataset(tmp_path)
    # the official CSV names clips relative to the working directory (./assets/examples/...)
    rows = [{"video": "./data/clip0", "prompt": "walks"}]
    (tmp_path / "lists").mkdir()
    csv_path = _write_csv(tmp_path / "lists" / "meta.csv", rows)
    monkeypatch.chdir(tmp_path)
    assert ManifestDataset(ManifestConfig(csv_path, frames=4)).rows[0].video == tmp_path / "data" / "clip0"
    monkeypatch.chdir(tmp_path / "lists")
    with pytest.raises(ManifestError, match="clip0_src.png|clip0"):
        ManifestDataset(ManifestConfig(csv_path, frames=4))
    assert len(ManifestDataset(ManifestConfig(csv_path, frames=4, root=tmp_path))) == 1


@needs_pil
def test_manifest_rejects_bad_rows_up_front(tmp_path):
    _tiny_dataset(tmp_path)
    data = tmp_path / "data"
    bad = _write_csv(data / "bad.csv", [{"video": "clip0", "prompt": '{"en_long": ["unclosed"', "slot": ""},
                                        {"video": "clip0", "prompt": "ok", "slot": "hat"},
                                        {"video": "clip0", "prompt": '{"title": "no caption"}', "slot": ""}],
                     columns=("video", "prompt", "slot"))
    with pytest.raises(ManifestError) as err:
        ManifestDataset(ManifestConfig(bad))
    msg = str(err.value)
    assert "line 2" in msg and "does not parse" in msg and "unknown slot 'hat'" in msg and "['title']" in msg
    no_col = _write_csv(data / "nocol.csv", [{"video": "clip0"}], columns=("video",))
    with pytest.raises(ManifestError, match=r"lacks the column\(s\) \['prompt'\]"):
        ManifestDataset(ManifestConfig(no_col))
    with pytest.raises(ManifestError, match="manifest not found"):
        ManifestDataset(ManifestConfig(data / "absent.csv"))
    with pytest.raises(ValueError, match="caption"):
        ManifestConfig(bad, caption="de_long")


def test_prompt_parsing_and_caption_fallbacks():
    official = json.dumps(OFFICIAL_PROMPT)
    assert parse_prompt(official) == "A woman walks toward the camera. Indoor setting with bright light."
    assert parse_prompt(official, "en_short") == "A woman walks. Indoor."
    assert caption_order("en_long") == ("en_long", "cn_long", "en_short", "cn_short")
    assert caption_order("cn_short") == ("cn_short", "en_short", "cn_long", "en_long")
    assert parse_prompt(json.dumps({"cn_long": "只有中文"})) == "只有中文"  # en_long missing -> cn_long
    assert parse_prompt(json.dumps({"en_short": "short only", "en_long": ["", None]})) == "short only"
    assert parse_prompt(json.dumps({"en_long": "plain string"})) == "plain string"
    assert parse_prompt("  a person turns around  ") == "a person turns around"
    assert parse_prompt('"quoted" text') == '"quoted" text'
    assert parse_prompt(json.dumps(["dynamic.", "static."])) == "dynamic. static."
    assert parse_prompt("") == ""
