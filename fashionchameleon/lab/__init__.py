"""What trains and measures the model: the procedural world, training stages, evaluation, bench, demo."""
