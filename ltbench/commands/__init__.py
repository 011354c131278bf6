"""Extra CLI commands, one module each exposing a click ``command`` (imported cheaply: no torch at import)."""
