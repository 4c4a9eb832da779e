"""`pikube doctor --fix`: apply the safe fixes, through the same `Host` seam the checks read with."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pikube.doctor.checks import Finding, Run, Status, Write
from pikube.doctor.host import Host


def fixable(findings: Sequence[Finding]) -> list[Finding]:
    """Findings that are not OK and whose fix is safe to apply unasked."""
    return [f for f in findings if f.status is not Status.OK and f.fix is not None and f.fix.safe]


def apply(host: Host, findings: Sequence[Finding], say: Callable[[str], None]) -> list[str]:
    """Apply every safe fix; return the problems (one sentence each) of fixes that failed."""
    failed = []
    for finding in fixable(findings):
        assert finding.fix is not None
        problem = None
        for step in finding.fix.steps:
            if isinstance(step, Write):
                try:
                    host.write_text(step.path, step.text)
                except OSError as exc:
                    problem = f"cannot write {step.path}: {exc.strerror or exc}"
            elif isinstance(step, Run):
                result = host.run(step.argv)
                if result is None:
                    problem = f"{step.argv[0]} is not installed"
                elif result[0] != 0:
                    problem = f"`{' '.join(step.argv)}` failed: {result[1].strip()[:200] or result[0]}"
            if problem:
                break
        if problem:
            failed.append(f"{finding.check}: {problem}")
            say(f"could not fix {finding.check}: {problem}")
        else:
            say(f"fixed {finding.check}: {finding.fix.text}" + (f" ({finding.fix.after})" if finding.fix.after else ""))
    return failed
