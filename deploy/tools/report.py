"""One report format for the deployment checkers (check_deploy.py, check_helm.py): an `ok` or `FAIL` line per
check, the problems indented under a failure, and a summary that sets the exit code."""

FAILURES = []


def report(name, problems):
    problems = [p for p in problems if p]
    if problems:
        FAILURES.append(name)
        print(f"FAIL {name}")
        for problem in problems:
            print(f"       - {problem}")
    else:
        print(f"ok   {name}")


def summary():
    """The exit code after every check: 0 when none failed."""
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    return 0
