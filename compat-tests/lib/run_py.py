"""Run one Python test module with unittest and print a machine-readable tally.

Usage: run_py.py path/to/test_x.py
Prints failing tests with the broker log tail, then a line
    RESULT passed=N failed=N skipped=N
Exit code 0 iff nothing failed.
"""

import importlib.util
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Result(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def _with_log(self, test, err):
        b = getattr(type(test), "broker", None)
        if b is not None:
            try:
                self.stream.writeln("---- broker log tail for %s ----\n%s\n----" % (test.id(), b.log_tail(25)))
            except Exception:
                pass

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        # One line per skip, for the report (compat-tests/lib/report.py).
        self.stream.writeln("SKIP-REASON %s: %s" % (test.id(), " ".join(str(reason).split())))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        fn = getattr(test, getattr(test, "_testMethodName", ""), None)
        reason = getattr(fn, "kbroker_differs", "expected failure")
        self.stream.writeln("XFAIL-REASON %s: %s" % (test.id(), " ".join(str(reason).split())))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._with_log(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self._with_log(test, err)


def main():
    path = sys.argv[1]
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result)
    t0 = time.monotonic()
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    # setUpClass/tearDownClass errors are reported as errors on a pseudo-test; count them too.
    # An expected failure (common.kbroker_differs) is a known kbroker bug: counted with the skips.
    print("RESULT passed=%d failed=%d skipped=%d (%.1fs)" % (res.passed, failed,
                                                             len(res.skipped) + len(res.expectedFailures),
                                                             time.monotonic() - t0))
    sys.stdout.flush()
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
