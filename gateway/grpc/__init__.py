"""gRPC front door: `gantry.v1.FaceVerification` and the generation of its Python stubs."""
