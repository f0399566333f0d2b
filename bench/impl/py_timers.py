# Python asyncio: N tasks, each asyncio.sleep of a random length in [MIN_MS, MAX_MS] ms.
# python3 py_timers.py N MIN_MS MAX_MS
import asyncio
import random
import sys
import time

n, min_ms, max_ms = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
late = []
last = [0.0]


async def sleeper(secs):
    due = time.monotonic() + secs
    await asyncio.sleep(secs)
    now = time.monotonic()
    late.append((now - due) * 1000)
    last[0] = now


async def main():
    random.seed(1)
    t0 = time.monotonic()
    tasks = [asyncio.create_task(sleeper((min_ms + random.random() * (max_ms - min_ms)) / 1000)) for _ in range(n)]
    setup = time.monotonic() - t0
    await asyncio.gather(*tasks)
    late.sort()
    print(f"RESULT total_s={last[0] - t0:.3f} setup_s={setup:.3f} late_p50_ms={late[n // 2]:.2f} "
          f"late_p99_ms={late[int(n * 0.99)]:.2f} late_min_ms={late[0]:.2f} late_max_ms={late[-1]:.2f} fired={len(late)}")

asyncio.run(main())
