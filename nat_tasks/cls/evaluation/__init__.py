"""Attacks, the evaluation and its resumable state, the gradient-masking checklist, the robustness report."""
