"""A child process for the durability tests: appends until killed, printing each ack.

    python appender_child.py HOME TAG COUNT THREADS

Prints ``<seq> <tag>-<n>`` once the append of entry ``<tag>-<n>`` is durable.
COUNT 0 means forever.
"""

from __future__ import annotations

import itertools
import sys
import threading

from aurora.ledger import Entry, Ledger


def main() -> None:
    home, tag, count, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    lock = threading.Lock()
    counter = iter(range(count)) if count else itertools.count()
    ledger = Ledger.open(home, checkpoint_every=0.05)

    def work() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            name = f"{tag}-{n}"
            receipt = ledger.append(Entry(kind="soak_task", data={"name": name}, subject=name))
            with lock:
                sys.stdout.write(f"{receipt.leaf_index} {name}\n")
                sys.stdout.flush()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ledger.close()


if __name__ == "__main__":
    main()
