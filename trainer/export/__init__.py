"""PyTorch → ONNX (→ TensorRT) → Triton model repository."""
