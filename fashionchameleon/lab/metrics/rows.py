"""The report's rows: which generator (and/or try-off extractor) runs which sections, and the rescheduling ablation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ...runtime.stream.rescheduling import SwitchPolicy
from .config import EvalConfig
from .generators import (ClipGenerator, CodecOracleGenerator, ModelTryOff, OracleGenerator, OracleTryOff,
                         StudentGenerator, TeacherGenerator, TryOffExtractor)
from .scores import RETRIEVALS

__all__ = ["Row", "ABLATION", "default_rows", "as_rows", "common_chunk"]

_ROW_SECTIONS = ("garment", "identity", "pattern", "recon", "switch", "drift", "tryoff")


@dataclass
class Row:
    """One line of the report: a generator (and/or a try-off extractor) and the sections it runs.

    `subset` limits the cases to the first ones (the teacher's `teacher_samples`); `reuse` names an
    earlier row whose per-sample details are re-summarised over this row's cases instead of running
    a generator (the ablation's full-policy row is the student row). Rows of the groups "teacher" and
    "ablation" run when their group is among `EvalConfig.sections`; the others run the sections of
    theirs that are."""

    name: str
    generator: ClipGenerator | None = None
    tryoff: TryOffExtractor | None = None
    sections: tuple[str, ...] = _ROW_SECTIONS
    group: str = "main"  # main | teacher | ablation | oracle
    subset: int | None = None
    reuse: str | None = None


ABLATION = (("refresh only", SwitchPolicy.refresh_only()), ("refresh + withdraw", SwitchPolicy.refresh_withdraw()),
            ("full (+ disentangle)", SwitchPolicy.full()))


def default_rows(model, cfg: EvalConfig, oracle: bool = False) -> list[Row]:
    """Rows for an `EmbeddedModel` (whichever parts it has), plus the oracle rows if asked."""
    rows: list[Row] = []
    if oracle:
        rows.append(Row("oracle", OracleGenerator(cfg.world()), OracleTryOff(), group="oracle"))
    if model is None:
        return rows
    if oracle:  # the ceiling of anything decoded by this codec
        rows.append(Row("oracle through the codec", CodecOracleGenerator(model.codec, cfg.world()),
                        sections=tuple(RETRIEVALS), group="oracle"))
    tryoff = ModelTryOff(model, cfg.tryoff_steps) if model.tryoff is not None else None
    if model.student is not None:
        rows.append(Row("student", StudentGenerator(model), tryoff))
    elif tryoff is not None:
        rows.append(Row("try-off", None, tryoff, sections=("tryoff",)))
    if model.teacher is not None and "teacher" in cfg.sections:
        rows.append(Row("teacher", TeacherGenerator(model, cfg.teacher_steps, cfg.teacher_cfg),
                        sections=tuple(RETRIEVALS), group="teacher", subset=cfg.teacher_samples))
    if model.student is not None and "ablation" in cfg.sections:
        for label, policy in ABLATION:
            full = policy == SwitchPolicy.full()
            rows.append(Row(f"ablation: {label}", StudentGenerator(model, policy),
                            sections=("switch",), group="ablation", subset=cfg.ablation_samples,
                            reuse="student" if full else None))
    return rows


def as_rows(subject, cfg: EvalConfig, oracle: bool) -> list[Row]:
    """The rows for `run_eval`'s `subject`: a model's default rows, or rows from generators / extractors."""
    if subject is None or hasattr(subject, "student"):  # an EmbeddedModel (or nothing: oracle only)
        return default_rows(subject, cfg, oracle)
    items = list(subject.items()) if isinstance(subject, Mapping) else [(getattr(r, "name", None), r) for r in subject]
    rows = [r if isinstance(r, Row) else
            Row(name, None, r, sections=("tryoff",)) if not hasattr(r, "generate") else
            Row(name, r, sections=_ROW_SECTIONS if getattr(r, "supports_switches", True) else tuple(RETRIEVALS))
            for name, r in items]
    if oracle and not any(r.group == "oracle" for r in rows):
        rows.insert(0, Row("oracle", OracleGenerator(cfg.world()), OracleTryOff(), group="oracle"))
    return rows


def common_chunk(rows: Sequence[Row], cfg: EvalConfig) -> int:
    """The chunk length every row's generator streams in (`cfg.chunk` when none says)."""
    chunks = {int(c) for r in rows if r.generator is not None
              for c in [getattr(r.generator, "chunk_frames", None)] if c}
    if len(chunks) > 1:
        raise ValueError(f"the generators stream in different chunk lengths {sorted(chunks)}; evaluate them apart")
    return chunks.pop() if chunks else cfg.chunk
