"""Running the real tritonserver on hosts without NVIDIA's container."""
