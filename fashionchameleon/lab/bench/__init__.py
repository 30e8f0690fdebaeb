"""`python -m fashionchameleon bench`: streaming speed, latency, switch cost, cost growth, teacher ratio
and efficiency, every figure measured in one run.

    from fashionchameleon.lab.bench import BenchConfig, run_bench, format_table
    result = run_bench(BenchConfig(random_weights=True, preset="tiny", size=(128, 128)))
    print(format_table(result))

One concern per file: `config` (what to measure), `standins` (decode stand-in codec and random
prompt encoder for random-weight runs), `setup` (model, codec, encoder, inputs), `measure`
(timers, RSS, percentiles, the timed codec proxy), `flops` (FLOPs of a chunk from the configs and
the measured matmul peak), `switch` (switch latency from per-frame retrieval), `machine` (what
ran it), `suite` (the measurements), `report` (table and JSON), `cli` (the subcommand).
"""
from __future__ import annotations

from .config import BenchConfig
from .report import format_table, write_json
from .suite import run_bench

__all__ = ["BenchConfig", "run_bench", "format_table", "write_json"]
