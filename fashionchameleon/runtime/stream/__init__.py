"""Streaming: the session, its KV cache, the chunk sampler, the switch (rescheduling), schedules and seeds,
and live control of a running stream (live.py; its recorded wardrobe schedule: live_schedule.py)."""
