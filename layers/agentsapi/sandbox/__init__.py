"""The sandbox port: how the API side runs code without ever running it in its own process."""
