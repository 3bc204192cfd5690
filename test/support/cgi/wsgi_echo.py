"""A WSGI upstream on Python's own wsgiref server: it answers with what an application would read
from the request (the CGI-style environ: HTTP_* keys, the query as parse_qs reads it) and appends
the same to the file named by SEEN_FILE, so a test can tell what arrived. Prints its port."""
import json
import os
import sys
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

SEEN = os.environ['SEEN_FILE']


def app(environ, start_response):
    record = {
        'path': environ.get('PATH_INFO', ''),
        'query_string': environ.get('QUERY_STRING', ''),
        'query': parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True),
        'http': {k: v for k, v in environ.items() if k.startswith('HTTP_')},
    }
    with open(SEEN, 'a', encoding='utf-8') as seen:
        seen.write(json.dumps(record) + '\n')
    body = json.dumps(record).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server('127.0.0.1', 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
