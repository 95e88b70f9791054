"""Estimation from real and augmented data: combining rules, small-area baselines, scoring."""
