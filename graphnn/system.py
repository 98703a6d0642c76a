"""What the machine has now, read where several parts of graphnn need it."""


def available_memory():
    """The memory available now (Linux ``MemAvailable``), or 8 GiB where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30
