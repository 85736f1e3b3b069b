"""HTTP API (FastAPI) and command line of the practice service circle."""
