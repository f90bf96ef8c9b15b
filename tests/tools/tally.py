"""The pass/fail bookkeeping the tool tests share: stop at the first failed check, naming it,
and print how many passed."""
import sys


class Tally:
    def __init__(self, name):
        self.name = name
        self.passed = 0

    def check(self, cond, what):
        if not cond:
            sys.exit(f"{self.name}: FAILED: {what}")
        self.passed += 1

    def done(self):
        print(f"{self.name}: {self.passed} passed, 0 failed")
