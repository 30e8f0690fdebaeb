"""Training: one resumable runner, stages (codec, teacher, forcing, dmd, tryoff) that plug into it.

The same code runs on a CPU, one GPU, or many GPUs under `torchrun` (DDP; FSDP for large models).
"""
