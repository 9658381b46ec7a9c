"""The bench's quiet-machine check (issue 24): CPU used by other processes during a run, not by the bench's own."""

from __future__ import annotations

import subprocess
import sys
import time

from tastebud_bench.machine_load import MachineLoad, busy_warning

BURN = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"


def test_a_process_that_is_not_the_benchs_makes_the_run_busy() -> None:
    load = MachineLoad().start()
    # Double-forked: the burning process is adopted by init, as another job on the machine would be.
    subprocess.run(["sh", "-c", f"({sys.executable} -c '{BURN.format(s=1.5)}' &)"], check=True)
    time.sleep(1.7)
    report = load.report()
    assert report["others_cpu_cores"] > 0.5 and not report["quiet"]
    warning = busy_warning(report)
    assert warning is not None and "not evidence" in warning


def test_the_benchs_own_processes_are_not_others() -> None:
    load = MachineLoad().start()
    live = subprocess.Popen([sys.executable, "-c", BURN.format(s=1.0)])  # a live child, like the embedded Redis
    subprocess.run([sys.executable, "-c", BURN.format(s=1.0)], check=True)  # a waited-for child
    report_before_exit = load.report()
    live.wait()
    assert report_before_exit["others_cpu_cores"] < 0.5  # ~2 cores' worth of our own burning is not counted
    assert set(report_before_exit) >= {"load_average_at_start", "steal_share", "quiet", "cores"}
