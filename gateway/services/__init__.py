"""Gateway services: the logic behind the routers, callable without HTTP."""
