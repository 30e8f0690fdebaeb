"""Streaming: the session, its KV cache, the chunk sampler, the switch (rescheduling), schedules and seeds."""
