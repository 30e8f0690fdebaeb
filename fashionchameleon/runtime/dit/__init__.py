"""The Wan-layout video DiT: model, attention masks, 3-D RoPE, fused CPU routes."""
