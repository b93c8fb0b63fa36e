"""Checks across columns: shared-weight parity, ONNX export parity, the ONNX cross-check."""
