"""Shared code of the Agents & Conversations API: models, domain logic, ports and adapters.

Plain Python: nothing in here knows about Lambda events. The Lambda handlers in ``functions/``
and the local server in ``local/`` are the only callers.
"""
