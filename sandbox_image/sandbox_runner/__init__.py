"""The code-interpreter sandbox: the same runner in the Lambda container image and in the local worker.

Nothing here imports the API package; the two sides share only the JSON protocol documented in
``protocol.py``.
"""
