"""The bottom layer: settings, error kinds, imaging, model cards. No torch, no servers."""
