"""Quality measures without a learned judge: descriptors, retrieval, continuity and drift."""
