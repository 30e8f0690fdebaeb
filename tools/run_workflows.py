"""Run the example workflows on a running ComfyUI and report pass/fail per workflow. Standard library only.

    python tools/run_workflows.py                          # every workflows/api/*.json on 127.0.0.1:8188
    python tools/run_workflows.py --fresh one_garment_stream   # clear ComfyUI's cache first, one workflow
    python tools/run_workflows.py --check-specs            # also check the UI files against /object_info

For each API-format workflow: POST /prompt, then poll GET /history/<id> until it finishes (or
--timeout). A workflow passes when the server accepts it, finishes with status "success" and
every output node reports files. `--check-specs` first checks every UI workflow and the stored
core-node specs against the server's own node definitions (GET /object_info). Exit status 1
when anything failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))

from workflow_check import check_api, check_samples, check_ui  # noqa: E402
from workflow_spec import CORE_OBJECT_INFO, CORE_SPECS, specs_from_object_info  # noqa: E402

WORKFLOWS = TOOLS.parent / "workflows"


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float = 0.0
    error: str = ""
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class Server:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, path: str, body: dict | None = None, timeout: float = 30.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def queue(self, prompt: dict, client_id: str) -> str:
        """POST /prompt; a rejected prompt raises RuntimeError with the server's validation errors."""
        try:
            return self.call("/prompt", {"prompt": prompt, "client_id": client_id})["prompt_id"]
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"rejected (HTTP {exc.code}): {_rejection(exc.read().decode())}") from None

    def wait(self, prompt_id: str, timeout: float, poll: float = 0.5) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            entry = self.call(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and \
                    entry["status"].get("status_str") in ("success", "error"):
                return entry
            time.sleep(poll)
        raise TimeoutError(f"not finished after {timeout:.0f} s (the prompt is still queued or running)")


def _rejection(text: str) -> str:
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text[:500]
    parts = [body.get("error", {}).get("message", "")] if isinstance(body.get("error"), dict) else [str(body)]
    for node, info in (body.get("node_errors") or {}).items():
        for err in info.get("errors", []):
            parts.append(f"node {node} ({info.get('class_type')}): {err.get('message')}: {err.get('details')}")
    return "; ".join(p for p in parts if p)


def _messages(entry: dict) -> dict[str, dict]:
    return {kind: data for kind, data in entry.get("status", {}).get("messages", [])}


def run_one(server: Server, name: str, prompt: dict, timeout: float) -> Result:
    start = time.monotonic()
    try:
        prompt_id = server.queue(prompt, str(uuid.uuid4()))
        entry = server.wait(prompt_id, timeout)
    except (RuntimeError, TimeoutError, urllib.error.URLError) as exc:
        return Result(name, False, time.monotonic() - start, str(exc))
    seconds = time.monotonic() - start
    messages = _messages(entry)
    cached = [str(n) for n in messages.get("execution_cached", {}).get("nodes", [])]
    executed = [n for n in prompt if n not in cached]
    files = [f"{i.get('subfolder', '')}/{i.get('filename')}".lstrip("/")
             for out in entry.get("outputs", {}).values() for i in out.get("images", [])]
    if entry["status"]["status_str"] != "success":
        err = messages.get("execution_error") or messages.get("execution_interrupted") or {}
        what = err.get("exception_message") or ("interrupted" if err else "failed")
        where = f"node {err.get('node_id')} ({err.get('node_type')}): " if err.get("node_id") else ""
        return Result(name, False, seconds, f"{where}{str(what).strip()}", executed, cached, files)
    savers = [k for k, n in prompt.items() if n["class_type"].startswith("Save")]
    missing = [k for k in savers if not entry.get("outputs", {}).get(k) and k not in cached]
    if missing:
        return Result(name, False, seconds, f"output node(s) {missing} reported no files", executed, cached, files)
    return Result(name, True, seconds, "", executed, cached, files)


def check_specs(server: Server, names: list[str]) -> list[str]:
    """The UI workflows and the stored core specs, against the server's node definitions."""
    info = server.call("/object_info", timeout=120)
    live = specs_from_object_info(info)
    problems = []
    for node, spec in specs_from_object_info(CORE_OBJECT_INFO).items():
        have = live.get(node)
        if have is None or (have.inputs, have.outputs, have.output_node) != (spec.inputs, spec.outputs,
                                                                             spec.output_node):
            problems.append(f"core node {node}: the stored spec differs from this server's /object_info")
    specs = {**live, **{k: v for k, v in CORE_SPECS.items() if v.virtual}}  # + notes: not in /object_info
    samples = set(info.get("FashionChameleonLoadSample", {}).get("input", {}).get("required", {})
                  .get("image", [None, {}])[1].get("options", []))
    for name in names:
        ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
        api = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
        found = check_ui(ui, specs) + check_api(ui, api, specs) + check_samples(api, samples)
        problems += [f"{name}: {p}" for p in found]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="workflow names (default: every workflows/api/*.json)")
    parser.add_argument("--server", default="http://127.0.0.1:8188")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per workflow")
    parser.add_argument("--fresh", action="store_true",
                        help="clear ComfyUI's output cache before each workflow (POST /free), so every node runs")
    parser.add_argument("--check-specs", action="store_true", help="check the UI files against /object_info first")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json"))
    server = Server(args.server)
    failed = False
    if args.check_specs:
        problems = check_specs(server, names)
        for p in problems:
            print(f"SPEC  {p}")
        print(f"specs: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        failed |= bool(problems)
    for name in names:
        prompt = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
        if args.fresh:
            server.call("/free", {"unload_models": True, "free_memory": True})
            time.sleep(2.0)
        r = run_one(server, name, prompt, args.timeout)
        failed |= not r.ok
        status = "PASS" if r.ok else "FAIL"
        print(f"{status}  {name:<24} {r.seconds:7.1f} s  ran {len(r.executed)}, cached {len(r.cached)}"
              f"{'  -> ' + ', '.join(r.files) if r.files else ''}{'  ' + r.error if r.error else ''}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
