"""Measuring: the per-step recorder and divergence, machine stability, the environment."""
