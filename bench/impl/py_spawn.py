# Python asyncio: spawn /bin/true N times, INFLIGHT tasks each calling
# create_subprocess_exec and p.wait(). python3 py_spawn.py N INFLIGHT
import asyncio
import sys
import time

total, inflight = int(sys.argv[1]), int(sys.argv[2])
state = {"started": 0, "done": 0, "fails": 0}


async def worker():
    while state["started"] < total:
        state["started"] += 1
        p = await asyncio.create_subprocess_exec("/bin/true")
        if await p.wait() != 0:
            state["fails"] += 1
        state["done"] += 1


async def main():
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    secs = time.monotonic() - t0
    d = state["done"]
    print(f"RESULT spawns_per_s={d / secs:.0f} spawns={d} fails={state['fails']} secs={secs:.3f}")

asyncio.run(main())
