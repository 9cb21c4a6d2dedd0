"""Local stand-ins for AWS: the HTTP front end, moto, and helpers to call the real handlers."""
