"""A small launcher that measures one command: `python -S -I bench/spawn.py FD COMMAND...`.

It forks, execs COMMAND (which inherits stdin, stdout, stderr and the environment), reaps it with `os.wait4`
and writes `wall_seconds cpu_seconds max_rss_kib exit_code` to file descriptor FD.

Why not measure from the benchmark process itself: on Linux a child's `ru_maxrss` starts from the resident size
of the process it was forked from (the kernel carries the old address space's high-water mark across `exec`),
so a child of a benchmark that has imported the SDK would never report less than ~90 MiB. This launcher, run
without `site` and importing nothing, is about 5 MiB: the least peak RSS any measured command can show, below
the smallest real one (`python -c pass`, about 8 MiB).
"""

import os
import sys
import time


def main() -> None:
    report_fd, argv = int(sys.argv[1]), sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report_fd)
            os.execvp(argv[0], argv)  # noqa: S606  # a fixed argv from the benchmark, no shell
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    report = f"{wall:.6f} {cpu:.6f} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\n"
    os.write(report_fd, report.encode())
    os.close(report_fd)


if __name__ == "__main__":
    main()
