"""The ``followup`` console script.

Garbage collection is turned off before anything else is imported: start-up builds objects that live until
the command ends (modules, classes, the configuration), and collecting cycles among them only costs time.
:func:`core.cli.main.resume_collection` turns it on again, past those objects, once the database is ready.
"""

import gc

gc.disable()


def main() -> None:
    from core.cli.main import main as run

    run()
