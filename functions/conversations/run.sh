#!/bin/sh
# Entry point of ConversationsStreamFunction: the Lambda Web Adapter (layer + AWS_LAMBDA_EXEC_WRAPPER)
# runs this, waits for /healthz, then forwards each function-URL request to the server on $PORT
# and streams its response back (AWS_LWA_INVOKE_MODE=response_stream).
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${PYTHONPATH}"
cd "${LAMBDA_TASK_ROOT}" || exit 1
exec python3 web.py
