"""Small, deterministic CPU training runs for models whose weights Gantry makes itself."""
