"""The mmengine trainer: the adversarial classifier model, its config sections, hooks, metric, SAM, the runner."""
