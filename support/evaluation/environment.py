"""Where an evaluation runs: its own database, the platform API on a real HTTP port, nothing shared.

- The database is a fresh one (`alfred_eval` by default), created and migrated like a test database and
  dropped at the end (`alfred.scratch_database`). The development database is never opened: Django's
  connection is switched to the evaluation database before the first query, and every thread (the API's
  included) connects there.
- The platform API is served by this process on 127.0.0.1 (a free port), and the agents' client reaches
  it over HTTP with the service JWT and the person's token, exactly as a worker reaches daphne.
  Why an in-process WSGI server (wsgiref + ThreadingMixIn) rather than daphne as a subprocess: it shares
  this process' settings and evaluation database with no environment plumbing, starts in milliseconds,
  and dies with the command; the API's views, middleware, authentication and rules are the same
  Django code under WSGI as under ASGI (the chat's WebSocket is not on this path: turns are played
  through the services the consumer calls).
- Celery tasks run eagerly in this process (`task_always_eager`): `message_receive` enqueues the real
  `run_turn` on commit and it runs right then; nothing is sent to a broker a running worker could take.
- Live frames go to an in-memory channel layer, so no browser of a running Alfred sees evaluation events.
- Local user tokens are used even when the deployment logs in through OIDC: the dataset's people are
  not identity-provider users. The API of this process verifies them with the same settings.
"""

import logging
import re
import threading
from contextlib import ExitStack, contextmanager
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings

from agents.checkpointer import checkpointer_close
from alfred.scratch_database import ScratchDatabase, ScratchDatabaseError
from support.tasks import run_turn

logger = logging.getLogger(__name__)
DEFAULT_DATABASE = "alfred_eval"
# The evaluation database is dropped and re-created: its name can never be the one of a database in use.
EVAL_DATABASE_NAME = re.compile(r"alfred_eval[a-z0-9_]{0,40}")


def add_evaluation_arguments(parser, *, default_database: str = DEFAULT_DATABASE) -> None:
    """The arguments every evaluation command takes: the dataset, --json and --eval-database."""
    parser.add_argument("dataset", help="the dataset file (YAML, see ../shared/DATASET.md)")
    parser.add_argument("--json", dest="json_out", metavar="OUT.json", help="write the cases and the summary here")
    parser.add_argument(
        "--eval-database",
        default=default_database,
        help=f"the evaluation database, created and dropped by the run: alfred_eval… (default {default_database})",
    )


def evaluation_database_name(name: str) -> str:
    """`name` if it may be dropped and re-created as an evaluation database; else a clear error."""
    if not EVAL_DATABASE_NAME.fullmatch(name):
        raise EvaluationSetupError("--eval-database must start with alfred_eval (lower-case letters, digits, _).")
    return name


class EvaluationSetupError(Exception):
    """The evaluation environment could not be set up (database, server)."""


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a request still running when the command ends must not keep the process alive
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        logger.debug("evaluation API: " + format, *args)


class ApiServer:
    """Alfred's WSGI application served on a free local port by a thread of this process."""

    def __init__(self):
        self.server = make_server(
            "127.0.0.1", 0, WSGIHandler(), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="evaluation-api", daemon=True)

    def start(self) -> "ApiServer":
        self.thread.start()  # the socket listens already: requests queue until the loop takes them
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class EvaluationEnvironment:
    """A context manager: the evaluation database and API server exist inside it, and are gone after it."""

    def __init__(self, *, database_name: str = DEFAULT_DATABASE):
        self.database_name = database_name
        self.api_url = ""
        self._database = ScratchDatabase(database_name)
        self._stack = ExitStack()

    def __enter__(self) -> "EvaluationEnvironment":
        try:
            self._create_database()
            self._stack.callback(self._destroy_database)
            server = ApiServer().start()
            self._stack.callback(server.stop)
            self.api_url = server.url
            self._stack.enter_context(self._process_settings())
            self._stack.enter_context(_eager_tasks())
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _process_settings(self):
        hosts = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
        return override_settings(
            PLATFORM_API_URL=self.api_url,
            ALLOWED_HOSTS=hosts,
            OIDC_ENABLED=False,
            CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
            # A dataset plays many turns a minute for the same people (each case's world reuses their ids):
            # the per-person limits protect a live service, not what an evaluation measures.
            CHAT_TURNS_PER_MINUTE=0,
            CHAT_CONVERSATIONS_PER_HOUR=0,
        )

    def _create_database(self) -> None:
        try:
            self._database.create()
        except ScratchDatabaseError as error:
            raise EvaluationSetupError(f"evaluation database: {error}") from error

    def _destroy_database(self) -> None:
        checkpointer_close()
        self._database.destroy()


@contextmanager
def _eager_tasks():
    """Celery tasks run in this process for the duration, enqueued exactly where the code enqueues them."""
    conf = run_turn.app.conf
    saved = (conf.task_always_eager, conf.task_eager_propagates)
    conf.task_always_eager = True
    conf.task_eager_propagates = False  # a failed turn is recorded (AgentRun, its reply) and the run goes on
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_eager_propagates = saved
