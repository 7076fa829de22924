"""Weight importers: lift released weights (ncnn packages, official .pth) into our modules."""
