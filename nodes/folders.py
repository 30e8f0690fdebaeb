"""Model folders: `models/fashionchameleon` (registered here) and ComfyUI's `diffusion_models`.

Importing this module registers the folder with `folder_paths` and creates it, so that users can
drop checkpoints there and `extra_model_paths.yaml` can name more folders under the same key.
Only safetensors files are listed: the engine never loads pickles.

A widget value is resolved inside the registered folders only: names with `..` components,
absolute paths, drive letters or NUL bytes are refused before any file is opened, and the path
found must lie inside one of the folders. Symbolic links inside a folder are followed, as
ComfyUI itself lists and loads them (users link model files from other disks); placing a link
needs access to the folder, which a workflow's widget value does not give.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import folder_paths

__all__ = ["FOLDER", "EMBEDDED", "EXTENSIONS", "register", "model_choices", "resolve", "searched"]

FOLDER = "fashionchameleon"
OTHER = "diffusion_models"
EMBEDDED = "embedded (bundled)"
EXTENSIONS = (".safetensors", ".sft")


def register() -> str:
    """Register `<models>/fashionchameleon` (keeping folders already named by the user) and create it."""
    path = os.path.join(folder_paths.models_dir, FOLDER)
    os.makedirs(path, exist_ok=True)
    known = folder_paths.folder_names_and_paths.get(FOLDER)
    paths = list(known[0]) if known else []
    if path not in paths:
        paths.append(path)
    # A new key registered through add_model_folder_path gets an empty extension set, which
    # matches every file; assign the tuple to list safetensors only.
    folder_paths.folder_names_and_paths[FOLDER] = (paths, set(EXTENSIONS))
    return path


def _listed(folder: str) -> list[str]:
    try:
        names = folder_paths.get_filename_list(folder)
    except KeyError:  # the folder name is not registered in this ComfyUI
        return []
    return [n for n in names if n.lower().endswith(EXTENSIONS)]


def model_choices() -> list[str]:
    """The loader's combo: the bundled model first, then `fashionchameleon/<file>`, `diffusion_models/<file>`."""
    return [EMBEDDED] + [f"{FOLDER}/{n}" for n in _listed(FOLDER)] + [f"{OTHER}/{n}" for n in _listed(OTHER)]


def searched() -> str:
    """The folders the loader looks in, for error messages."""
    parts = []
    for folder in (FOLDER, OTHER):
        try:
            dirs = folder_paths.get_folder_paths(folder)
        except KeyError:
            dirs = []
        parts.append(f"{folder}: {dirs}")
    return "; ".join(parts)


def _check_name(choice: str, name: str) -> None:
    """Refuse a file name that could leave its folder ('..', absolute, a drive, a NUL byte)."""
    posix, windows = PurePosixPath(name.replace("\\", "/")), PureWindowsPath(name)
    if "\0" in name or posix.is_absolute() or windows.drive or windows.root or ".." in posix.parts:
        raise ValueError(f"model: {choice!r} points outside the model folders (absolute paths and '..' are not "
                         f"allowed); choose a file from the list, which holds the files in {searched()}")


def _inside(path: str, folder: str) -> bool:
    """`path` lies inside one of `folder`'s registered directories (by its absolute path; links are not resolved)."""
    full = os.path.abspath(path)
    for root in folder_paths.get_folder_paths(folder):
        root = os.path.abspath(root)
        try:
            if os.path.commonpath([full, root]) == root:
                return True
        except ValueError:  # another drive (Windows)
            continue
    return False


def resolve(choice: str) -> Path | None:
    """A combo value -> the file's full path (None for the bundled model). Errors name the folders searched."""
    if choice == EMBEDDED:
        return None
    folder, _, name = choice.partition("/")
    if folder not in (FOLDER, OTHER) or not name:
        raise ValueError(f"model: unknown model {choice!r}: choose {EMBEDDED!r} or a file listed from the folders "
                         f"({searched()})")
    _check_name(choice, name)
    full = folder_paths.get_full_path(folder, name)
    if full is None:
        raise FileNotFoundError(f"model file {name!r} was not found in the {folder!r} folders ({searched()}); "
                                f"put the .safetensors file there and refresh the node list")
    if not _inside(full, folder):
        raise ValueError(f"model: {choice!r} resolved to {full}, outside the {folder!r} folders ({searched()}); "
                         f"choose a file from the list")
    return Path(full)


MODELS_DIR = register()
