"""The process's file-descriptor limit, which caps how many connections a socket can hold.

Each connection is a file descriptor; a server with 1,000 peers needs a
limit above the common default of 1,024. `ensure_fd_limit(n)` raises the
soft limit as far as the hard limit allows and says plainly when that is not
enough, instead of letting accept() fail later with EMFILE.
"""

from __future__ import annotations

import resource


class FdLimitError(OSError):
    """The hard file-descriptor limit is below what was asked for."""


def fd_limit() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE of this process."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def ensure_fd_limit(needed: int) -> int:
    """Raise the soft limit to at least `needed` descriptors; returns the soft limit now in force."""
    soft, hard = fd_limit()
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            # A privileged process (root, CAP_SYS_RESOURCE) may raise the hard limit too.
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            pass
        raise FdLimitError(
            f"{needed} file descriptors are needed but the hard limit is {hard}: raise it "
            f"(ulimit -Hn, LimitNOFILE= for systemd, or --ulimit nofile= for Docker)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed
