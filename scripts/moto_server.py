"""moto server with DynamoDB requests serialized.

moto's threaded server applies DynamoDB writes without a lock, so two
concurrent UpdateItem ADDs on one item can lose an update, and two
conditional puts can both succeed. Real DynamoDB applies each write to an
item atomically, which berth relies on and its conformance suite checks.
This launcher runs moto's own WSGI application and lets one DynamoDB
request in at a time; S3 and SQS requests stay concurrent.

    python moto_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

_dynamodb = threading.Lock()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)

    def serialized(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with _dynamodb:
                # The body is produced inside the lock: moto does its work
                # before returning the response iterable.
                return list(app(environ, start_response))
        return app(environ, start_response)

    run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
