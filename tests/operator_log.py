"""What in the operator's log fails a test (integration harness and e2e alike): a record at
ERROR or above, or a traceback; except kopf's one known harmless error while it stops."""

import re

# kopf's API layer when its session is closed under a discovery request during its own
# shutdown (an operator stopped right after it started): logged at ERROR, harmless.
KOPF_SHUTDOWN_RETRY = re.compile(r"Request attempt #\d+/\d+ failed; (will retry|TCP closed)")
