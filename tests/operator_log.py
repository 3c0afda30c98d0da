"""What in the operator's log fails a test (integration harness and e2e alike): a record at
ERROR or above, or a traceback; except kopf's one known harmless error while it stops."""

import re

# kopf's API layer when its session is closed under a discovery request during its own
# shutdown (an operator stopped right after it started): logged at ERROR, harmless.
KOPF_SHUTDOWN_RETRY = re.compile(r"Request attempt #\d+/\d+ failed; (will retry|TCP closed)")
# A line of `tep operator`'s log at ERROR or above (cli.py's format:
# "%(asctime)s %(levelname)s %(name)s %(message)s").
ERROR_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (ERROR|CRITICAL) ")
TRACEBACK = "Traceback (most recent call last)"
# Written into a log file by a test harness before it stops the operator ("===== " lines are
# the harness's own).
STOP_MARK = "===== stopping: SIGTERM"


def logged_errors(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each error record and traceback in `tep operator`'s log."""
    found, stopping = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("===== "):
            stopping = line.startswith(STOP_MARK)
        elif (ERROR_LINE.match(line) or line.startswith(TRACEBACK)) and not (
            stopping and KOPF_SHUTDOWN_RETRY.search(line)
        ):
            found.append((number, line))
    return found
