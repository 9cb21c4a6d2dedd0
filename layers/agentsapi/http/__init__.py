"""The thin HTTP edge shared by the handlers: body parsing, error bodies, SSE, the resolver setup.

It uses the powertools resolver's request and response objects but never a raw Lambda event.
"""
