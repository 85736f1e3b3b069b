"""Services between the routes/CLI and the spatial model or storage."""
