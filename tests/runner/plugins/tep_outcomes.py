"""A reporting plugin for the runner's tests (`-p tep_outcomes`, with this folder on PYTHONPATH): writes
{node id: [category, ...]} as pytest's terminal reporter categorises each report, to $TEP_OUTCOMES_FILE.

Loaded into bare pytest and into the runner alike, so the two runs are compared by the same measure."""

import json
import os


class _Outcomes:
    def __init__(self, config):
        self.config = config
        self.outcomes = {}

    def pytest_runtest_logreport(self, report):
        category = self.config.hook.pytest_report_teststatus(report=report, config=self.config)[0]
        if category:
            self.outcomes.setdefault(report.nodeid, []).append(category)

    def pytest_collectreport(self, report):
        if not report.passed:  # a file that did not collect, or was skipped at import (each collector)
            self.outcomes.setdefault(report.nodeid, []).append("error" if report.failed else "skipped")

    def pytest_unconfigure(self):
        with open(os.environ["TEP_OUTCOMES_FILE"], "w") as f:
            json.dump(self.outcomes, f)


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller, under xdist
        config.pluginmanager.register(_Outcomes(config))
