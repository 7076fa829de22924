"""The serving library below both front doors: Triton client, model catalog, pipelines.

The gateway (HTTP, gRPC) and the job workers call the same pipelines, so a synchronous
request and a batch job give the same answer. Nothing here imports torch or ``trainer``.
"""
