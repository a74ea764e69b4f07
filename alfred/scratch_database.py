"""A fresh database for a run that must never touch the development data (evaluation, benchmarks).

It is created and migrated like a test database (`create_test_db` with the given TEST NAME), on the
server Django is configured for, and dropped at the end. Django's default connection is switched to it
before the first query, so every thread of the process (an in-process API server's included) connects
there; the development database is never opened.
"""

import logging

from django.db import DatabaseError, connection, connections

logger = logging.getLogger(__name__)


class ScratchDatabaseError(Exception):
    """The scratch database could not be created, or the connection does not point at it."""


class ScratchDatabase:
    """`create()` it, work on Django's default connection, `destroy()` it (the settings are restored)."""

    def __init__(self, name: str):
        self.name = name
        self._old_name: str | None = None
        self._saved: dict = {}

    def create(self) -> None:
        database = connection.settings_dict
        if self.name == database["NAME"]:  # create_test_db drops an existing database of that name
            raise ScratchDatabaseError(f"{self.name!r} is the configured database, not a scratch one")
        test = database.setdefault("TEST", {})
        self._saved = {"TEST_NAME": test.get("NAME"), "CONN_MAX_AGE": database.get("CONN_MAX_AGE", 0)}
        test["NAME"] = self.name
        database["CONN_MAX_AGE"] = 0  # request threads close their connections: the drop can run
        try:
            self._old_name = connection.creation.create_test_db(
                verbosity=0, autoclobber=True, keepdb=False, serialize=False
            )
        except DatabaseError as error:
            self._restore_settings()
            raise ScratchDatabaseError(f"could not create the database {self.name!r}: {error}") from error
        if connection.settings_dict["NAME"] != self.name:  # never work on another database
            raise ScratchDatabaseError(f"connected to {connection.settings_dict['NAME']!r}, not {self.name!r}")

    def destroy(self) -> None:
        """Drop it (a failure is logged: the next run clobbers it anyway) and restore the settings."""
        connections.close_all()
        try:
            connection.creation.destroy_test_db(self._old_name, verbosity=0, keepdb=False)
        except DatabaseError as error:
            logger.warning("could not drop the scratch database", extra={"database": self.name, "error": str(error)})
        self._restore_settings()

    def _restore_settings(self) -> None:
        database = connection.settings_dict
        database["TEST"]["NAME"], database["CONN_MAX_AGE"] = self._saved["TEST_NAME"], self._saved["CONN_MAX_AGE"]
