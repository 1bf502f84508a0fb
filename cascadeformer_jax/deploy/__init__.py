"""Deployment: a trained classifier exported to ONNX or StableHLO, with what a deployment needs beside it.

`serving` is the function that is exported and its input signature, `onnx_format` and `stablehlo_format` turn it
into a model file and run that file back, and `export` writes the whole output folder (`python -m
cascadeformer_jax.export`).
"""
