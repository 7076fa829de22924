"""Container images: the Dockerfile, pinned requirements, and the script that pins them."""
