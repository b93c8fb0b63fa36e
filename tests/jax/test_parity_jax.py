"""`dlrosetta parity` for the jax family: every column starts from the shared weights and its
first-step loss equals the numpy float64 reference within 1e-5 relative (MLP, CNN, linear and tanh regression).
Fails, never skips, where a framework is missing."""
from parity_family import family_tests

parity, test_first_step_equals_the_numpy_reference, test_parity_run_passes = family_tests(("jax", "flax", "haiku", "keras-jax"))
