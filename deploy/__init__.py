"""Deployment: the Triton backend shim and launcher, Dockerfiles, Kubernetes manifests."""
